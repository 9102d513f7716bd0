"""Section 10's rules in the rooms alone (``_sfu``): the media node's answers fed in by hand.

The rooms are pure, so the media node's side is an input here; tests/sfu
drives the same rules with a real Janus.
"""

from __future__ import annotations

from typing import Any

from roomsignal.server._denials import Denial
from roomsignal.server._rooms import Effect
from roomsignal.server._state import MediaFailure, MediaOp

from .test_rooms import Driver, frames, notes


def ops(effects: list[Effect], kind: str | None = None) -> list[MediaOp]:
    return [e for e in effects if isinstance(e, MediaOp) and (kind is None or e.kind == kind)]


def sfu(**config: Any) -> Driver:
    driver = Driver(media_node=True, **config)
    driver.rooms.media_back(driver.now)
    return driver


def up(driver: Driver, conn: int) -> str:
    """Publish on ``conn`` and bring its upstream up; its exchange id."""
    result = frames(driver.request(conn, "publish", audio=False, video=True), conn)[0]["result"]
    effects = driver.request(conn, "sdpOffer", exchangeId=result["exchangeId"], sdp="offer")
    (op,) = ops(effects, "publish")
    driver.rooms.media_done(op, "answer", None, driver.now)
    driver.rooms.media_up(op.key, driver.now)
    return str(result["exchangeId"])


def test_join_says_sfu_and_p2p_stays_the_default() -> None:
    assert sfu().join(1, "a")["media"] == "sfu"
    assert Driver().join(1, "a")["media"] == "p2p"


def test_the_upstream_offer_waits_for_the_node_and_candidates_before_it_are_held() -> None:
    driver = sfu()
    driver.join(1, "studio")
    driver.join(2, "viewer")
    result = frames(driver.request(1, "publish", audio=False, video=True), 1)[0]["result"]
    upstream = result["exchangeId"]
    assert notes(driver.request(1, "iceCandidate", exchangeId=upstream, candidate="c1"), 2) == []
    effects = driver.request(1, "sdpOffer", exchangeId=upstream, sdp="offer")
    assert frames(effects, 1) == []  # answered once the node answered
    assert [(o.kind, o.candidate) for o in ops(effects)] == [("publish", None), ("trickle", "c1")]
    effects = driver.rooms.media_done(ops(effects, "publish")[0], "answer", None, driver.now)
    answer, note = frames(effects, 1)
    assert answer["result"] == {}
    assert note["params"]["from"] == "@media" and note["params"]["sdp"] == "answer"
    assert notes(effects, 2) == []  # streamPublished waits for the node's word
    effects = driver.rooms.media_up(upstream, driver.now)
    assert [n["participantId"] for n in notes(effects, 2, "streamPublished")] == [driver.ids[1]]
    # A second offer on the upstream: the exchange is in progress.
    again = frames(driver.request(1, "sdpOffer", exchangeId=upstream, sdp="offer"), 1)[0]
    assert again["error"]["code"] == 303


def test_a_held_subscribe_is_offered_once_the_upstream_is_up_and_the_publisher_hears_nothing() -> (
    None
):
    driver = sfu()
    driver.join(1, "studio")
    driver.join(2, "viewer")
    result = frames(driver.request(1, "publish", audio=False, video=True), 1)[0]["result"]
    effects = driver.request(2, "subscribe", target=driver.ids[1])
    exchange_id = frames(effects, 2)[0]["result"]["exchangeId"]
    assert ops(effects) == [] and frames(effects, 1) == []
    effects = driver.request(1, "sdpOffer", exchangeId=result["exchangeId"], sdp="offer")
    driver.rooms.media_done(ops(effects)[0], "answer", None, driver.now)
    effects = driver.rooms.media_up(result["exchangeId"], driver.now)
    (op,) = ops(effects, "subscribe")
    assert op.key == exchange_id and op.feed == result["exchangeId"] and op.ticket is None
    effects = driver.rooms.media_done(op, "offer", None, driver.now)
    (offer,) = notes(effects, 2, "sdpOffer")
    assert offer["from"] == driver.ids[1] and offer["exchangeId"] == exchange_id
    effects = driver.request(2, "sdpAnswer", exchangeId=exchange_id, sdp="answer")
    (start,) = ops(effects, "start")
    assert frames(effects, 2) == [] and frames(effects, 1) == []
    assert frames(driver.rooms.media_done(start, None, None, driver.now), 2)[0]["result"] == {}
    effects = driver.request(2, "unsubscribe", target=driver.ids[1])
    assert [o.kind for o in ops(effects)] == ["hangup"] and frames(effects, 1) == []


def test_a_subscribe_to_an_upstream_that_is_up_is_answered_with_the_offer() -> None:
    driver = sfu()
    driver.join(1, "studio")
    driver.join(2, "viewer")
    up(driver, 1)
    effects = driver.request(2, "subscribe", target=driver.ids[1])
    assert frames(effects, 2) == []
    (op,) = ops(effects, "subscribe")
    effects = driver.rooms.media_done(op, "offer", None, driver.now)
    answer, offer = frames(effects, 2)
    assert answer["result"]["exchangeId"] == op.key and offer["method"] == "sdpOffer"


def test_a_node_failure_answers_the_request_that_waited() -> None:
    driver = sfu()
    driver.join(1, "studio")
    driver.join(2, "viewer")
    up(driver, 1)
    (op,) = ops(driver.request(2, "subscribe", target=driver.ids[1]), "subscribe")
    failure = MediaFailure(Denial.MEDIA_NODE_RESPONSE, None, {"mediaNodeCode": 499})
    effects = driver.rooms.media_done(op, None, failure, driver.now)
    error = frames(effects, 2)[0]["error"]
    assert error["code"] == 802 and error["data"]["mediaNodeCode"] == 499
    assert error["data"]["method"] == "subscribe" and error["data"]["exchangeId"] == op.key
    assert [o.kind for o in ops(effects)] == ["hangup"]
    assert driver.rooms.stats()["exchanges"] == 0


def test_losing_the_node_ends_everything_and_requests_get_801_until_it_is_back() -> None:
    driver = sfu()
    driver.join(1, "studio")
    driver.join(2, "viewer")
    driver.join(3, "bystander")
    upstream = up(driver, 1)
    (op,) = ops(driver.request(2, "subscribe", target=driver.ids[1]), "subscribe")
    driver.rooms.media_done(op, "offer", None, driver.now)
    effects = driver.rooms.media_lost(driver.now)
    assert ops(effects) == []  # nothing to hang up on a node that is gone
    for conn, exchange_id in ((1, upstream), (2, op.key)):
        lost, ended = notes(effects, conn)[:2]
        assert lost["code"] == 801 and lost["data"]["reason"] == "mediaNodeLost"
        assert ended["exchangeId"] == exchange_id and ended["reason"] == "mediaNodeLost"
    assert [n["participantId"] for n in notes(effects, 3, "streamUnpublished")] == [driver.ids[1]]
    assert notes(effects, 3, "sessionError") == []  # no exchange through the node
    refused = frames(driver.request(1, "publish", audio=False, video=True), 1)[0]["error"]
    assert refused["code"] == 801 and refused["data"]["reason"] == "unreachable"
    chat = frames(driver.request(3, "sendMessage", text="still here"), 3)[0]
    assert chat["result"] == {}
    driver.rooms.media_back(driver.now)
    assert "result" in frames(driver.request(1, "publish", audio=False, video=True), 1)[0]


def test_a_publisher_leaving_ends_its_subscriptions_as_peer_to_peer() -> None:
    driver = sfu()
    driver.join(1, "studio")
    driver.join(2, "viewer")
    upstream = up(driver, 1)
    (op,) = ops(driver.request(2, "subscribe", target=driver.ids[1]), "subscribe")
    driver.rooms.media_done(op, "offer", None, driver.now)  # awaiting the viewer's answer
    effects = driver.request(1, "leave")
    assert sorted(o.key for o in ops(effects, "hangup")) == sorted([upstream, op.key])
    (error,) = notes(effects, 2, "sessionError")
    assert error["code"] == 103 and error["data"]["exchangeId"] == op.key
    assert driver.rooms.stats()["exchanges"] == 0


def test_unknown_exchanges_are_refused_as_peer_to_peer() -> None:
    driver = sfu()
    driver.join(1, "studio")
    for method, params in (
        ("iceCandidate", {"candidate": "c"}),
        ("sdpOffer", {"sdp": "v=0"}),
    ):
        error = frames(driver.request(1, method, exchangeId="x_nope", **params), 1)[0]["error"]
        assert error["code"] == 101, method
    error = frames(driver.request(1, "sdpAnswer", exchangeId="x_nope", sdp="v=0"), 1)[0]["error"]
    assert error["code"] == 105


def test_an_upstream_answered_but_not_up_within_sdp_timeout_is_303_and_ends() -> None:
    driver = sfu(sdp_timeout=2.0)
    driver.join(1, "studio")
    driver.join(2, "viewer")
    result = frames(driver.request(1, "publish", audio=False, video=True), 1)[0]["result"]
    upstream = result["exchangeId"]
    (op,) = ops(driver.request(1, "sdpOffer", exchangeId=upstream, sdp="offer"), "publish")
    driver.now += 1.5  # the node answers late: the publisher gets sdp_timeout from then
    driver.rooms.media_done(op, "answer", None, driver.now)
    held = frames(driver.request(2, "subscribe", target=driver.ids[1]), 2)[0]["result"]
    assert driver.rooms.expire(driver.now + 1.999) == []
    effects = driver.rooms.expire(driver.now + 2.0)
    (error,) = notes(effects, 1, "sessionError")
    assert error["code"] == 303 and "connect" in error["message"]
    assert error["data"]["participantId"] == "@media" and error["data"]["exchangeId"] == upstream
    (ended,) = notes(effects, 2, "subscriptionEnded")
    assert ended["exchangeId"] == held["exchangeId"] and ended["reason"] == "unpublished"
    assert notes(effects, 2, "streamUnpublished") == []  # it was never published
    assert sorted(o.key for o in ops(effects, "hangup")) == sorted([upstream, held["exchangeId"]])
    late = frames(driver.request(1, "iceCandidate", exchangeId=upstream, candidate=""), 1)[0]
    assert late["error"]["code"] == 303


def test_an_upstream_up_in_time_has_no_deadline_left() -> None:
    driver = sfu(sdp_timeout=2.0)
    driver.join(1, "studio")
    up(driver, 1)
    assert driver.rooms.expire(driver.now + 60) == []
    assert driver.rooms.next_deadline() is None


def answered(driver: Driver) -> tuple[str, MediaOp]:
    """Viewer (conn 2) subscribes to studio's (conn 1) upstream, which is up, and answers."""
    up(driver, 1)
    (op,) = ops(driver.request(2, "subscribe", target=driver.ids[1]), "subscribe")
    driver.rooms.media_done(op, "offer", None, driver.now)
    (start,) = ops(driver.request(2, "sdpAnswer", exchangeId=op.key, sdp="answer"), "start")
    return op.key, start


def test_a_subscription_answered_but_not_up_within_sdp_timeout_is_303_and_ends() -> None:
    driver = sfu(sdp_timeout=2.0)
    driver.join(1, "studio")
    driver.join(2, "viewer")
    exchange_id, start = answered(driver)
    driver.now += 1.5  # the node takes the answer late: sdp_timeout from then
    (taken,) = frames(driver.rooms.media_done(start, None, None, driver.now), 2)
    assert taken["result"] == {}
    assert driver.rooms.expire(driver.now + 1.999) == []
    effects = driver.rooms.expire(driver.now + 2.0)
    error, ended = notes(effects, 2)
    assert error["code"] == 303 and "connect" in error["message"]
    assert error["data"]["participantId"] == driver.ids[1]
    assert error["data"]["exchangeId"] == exchange_id
    assert ended["exchangeId"] == exchange_id and ended["reason"] == "connectTimeout"
    assert notes(effects, 1) == []  # the publisher hears nothing
    assert [o.key for o in ops(effects, "hangup")] == [exchange_id]
    late = frames(driver.request(2, "iceCandidate", exchangeId=exchange_id, candidate=""), 2)[0]
    assert late["error"]["code"] == 303


def test_a_subscription_up_in_time_has_no_deadline_left_whenever_the_node_says_so() -> None:
    for up_first in (False, True):  # webrtcup before or after the node's word on the answer
        driver = sfu(sdp_timeout=2.0)
        driver.join(1, "studio")
        driver.join(2, "viewer")
        exchange_id, start = answered(driver)
        if up_first:
            driver.rooms.media_up(exchange_id, driver.now)
        driver.rooms.media_done(start, None, None, driver.now)
        if not up_first:  # (the node says it once)
            driver.rooms.media_up(exchange_id, driver.now)
        assert driver.rooms.expire(driver.now + 60) == []
        assert driver.rooms.next_deadline() is None
