"""Every row of PROTOCOL.md's error table, triggered by its real condition over loopback.

Each test checks the code, ``data.name`` (and the ids ``data`` must carry),
then the state afterwards: what the others saw, and that the connection (or
the session) goes on as the protocol says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt

from roomsignal.server import SignalingServer

from .conftest import SECRET, Peer, ServerFactory, token, until

OpenPeer = Callable[[], Awaitable[Peer]]
MakePeer = Callable[[SignalingServer], Awaitable[Peer]]


def check(error: dict[str, Any], code: int, name: str, method: str | None = None) -> None:
    assert error["code"] == code, error
    assert error["data"]["name"] == name, error
    assert isinstance(error["message"], str) and error["message"]
    if method is not None:
        assert error["data"]["method"] == method, error


async def publisher_and_subscriber(peer: OpenPeer) -> tuple[Peer, Peer]:
    pub, sub = await peer(), await peer()
    await pub.join("room", "pub")
    await sub.join("room", "sub")
    await pub.call("publish", audio=True, video=True)
    await pub.note("participantJoined")
    await sub.note("streamPublished")
    return pub, sub


# --- 101 USER_GENERIC_ERROR_CODE ----------------------------------------------


async def test_101_invalid_participant_type_then_a_valid_join_succeeds(peer: OpenPeer) -> None:
    alice = await peer()
    error = await alice.fail("join", token=token(), name="alice", participantType="robot")
    check(error, 101, "USER_GENERIC_ERROR_CODE", "join")
    joined = await alice.call("join", token=token(), name="alice", participantType="screen")
    assert joined["participantType"] == "screen"


async def test_101_empty_or_blank_name_then_a_named_join_succeeds(peer: OpenPeer) -> None:
    alice = await peer()
    for name in ("", "   "):
        error = await alice.fail("join", token=token(), name=name)
        check(error, 101, "USER_GENERIC_ERROR_CODE", "join")
        assert "name" in error["message"]
    joined = await alice.call("join", token=token(), name="alice")
    assert joined["participantId"]


async def test_101_join_on_a_connection_that_already_joined(
    server: SignalingServer, peer: OpenPeer
) -> None:
    alice = await peer()
    await alice.join("room", "alice")
    error = await alice.fail("join", token=token("other"), name="alice2")
    check(error, 101, "USER_GENERIC_ERROR_CODE", "join")
    assert (await alice.call("getSessionState"))["sessionId"] == "room"
    assert server.rooms.session_state("other") is None


async def test_101_subscribe_to_yourself_or_to_a_disconnected_target(
    server: SignalingServer, peer: OpenPeer
) -> None:
    pub, sub = await publisher_and_subscriber(peer)
    error = await pub.fail("subscribe", target=pub.participant_id)
    check(error, 101, "USER_GENERIC_ERROR_CODE", "subscribe")
    await pub.drop()
    error = await sub.fail("subscribe", target=pub.participant_id)
    check(error, 101, "USER_GENERIC_ERROR_CODE", "subscribe")
    assert error["data"]["participantId"] == pub.participant_id
    error = await sub.fail("unsubscribe", target=pub.participant_id)
    check(error, 101, "USER_GENERIC_ERROR_CODE", "unsubscribe")
    assert server.rooms.stats()["exchanges"] == 0


async def test_101_ice_candidates_over_the_queue_limit(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(ice_queue_limit=3, sdp_timeout=30.0)
    pub, sub = await make_peer(server), await make_peer(server)
    await pub.join("room", "pub")
    await sub.join("room", "sub")
    await pub.call("publish", audio=True, video=False)
    exchange = (await sub.call("subscribe", target=pub.participant_id))["exchangeId"]
    for n in range(3):
        await pub.call("iceCandidate", exchangeId=exchange, candidate=f"c{n}", sdpMid="0")
    error = await pub.fail("iceCandidate", exchangeId=exchange, candidate="c3")
    check(error, 101, "USER_GENERIC_ERROR_CODE", "iceCandidate")
    assert error["data"]["exchangeId"] == exchange
    await sub.call("iceCandidate", exchangeId=exchange, candidate="s0")
    await pub.call("sdpOffer", exchangeId=exchange, sdp="v=0 offer")
    await sub.note("streamPublished")
    offer = await sub.note("sdpOffer")
    assert offer["sdp"] == "v=0 offer"
    held = [await sub.note("iceCandidate") for _ in range(3)]
    assert [c["candidate"] for c in held] == ["c0", "c1", "c2"]
    assert held[0]["sdpMid"] == "0"
    assert [c["seq"] for c in held] == [offer["seq"] + 1, offer["seq"] + 2, offer["seq"] + 3]
    await sub.quiet()
    await pub.note("participantJoined")
    await pub.note("subscribeRequest")
    assert (await pub.note("iceCandidate"))["candidate"] == "s0"
    # After the offer, candidates flow at once, past the limit.
    for n in range(5):
        await pub.call("iceCandidate", exchangeId=exchange, candidate=f"late{n}")
    assert [(await sub.note("iceCandidate"))["candidate"] for _ in range(5)] == [
        f"late{n}" for n in range(5)
    ]


async def test_101_candidate_or_offer_on_an_unknown_exchange(peer: OpenPeer) -> None:
    pub, sub = await publisher_and_subscriber(peer)
    error = await pub.fail("sdpOffer", exchangeId="x_nope", sdp="v=0")
    check(error, 101, "USER_GENERIC_ERROR_CODE", "sdpOffer")
    assert error["data"]["exchangeId"] == "x_nope"
    error = await sub.fail("iceCandidate", exchangeId="x_nope", candidate="c")
    check(error, 101, "USER_GENERIC_ERROR_CODE", "iceCandidate")


async def test_sdp_sent_in_the_wrong_role_names_the_counterpart(peer: OpenPeer) -> None:
    pub, sub = await publisher_and_subscriber(peer)
    exchange = (await sub.call("subscribe", target=pub.participant_id))["exchangeId"]
    error = await sub.fail("sdpOffer", exchangeId=exchange, sdp="v=0")
    check(error, 101, "USER_GENERIC_ERROR_CODE", "sdpOffer")
    assert error["data"]["exchangeId"] == exchange
    assert error["data"]["participantId"] == pub.participant_id
    await pub.note("subscribeRequest")
    await pub.call("sdpOffer", exchangeId=exchange, sdp="v=0")
    error = await pub.fail("sdpAnswer", exchangeId=exchange, sdp="v=0")
    check(error, 105, "USER_NOT_STREAMING_ERROR_CODE", "sdpAnswer")
    assert error["data"]["exchangeId"] == exchange
    assert error["data"]["participantId"] == sub.participant_id
    # An exchange id the caller is no party to names the caller itself.
    error = await pub.fail("sdpAnswer", exchangeId="x_nope", sdp="v=0")
    check(error, 105, "USER_NOT_STREAMING_ERROR_CODE", "sdpAnswer")
    assert error["data"]["participantId"] == pub.participant_id


async def test_json_rpc_errors_never_carry_a_participant_id(peer: OpenPeer) -> None:
    alice = await peer()
    await alice.join("room", "alice")
    error = await alice.fail("fly")
    assert error["code"] == -32601
    assert "participantId" not in error["data"]
    error = await alice.fail("publish", audio="yes")
    assert error["code"] == -32602
    assert "participantId" not in error["data"]
    error = await alice.fail("simulateScenario", scenario="meteorStrike")
    assert error["code"] == -32602
    assert "participantId" not in error["data"]
    # A room code once joined names the caller.
    error = await alice.fail("unpublish")
    assert error["data"]["participantId"] == alice.participant_id


# --- 102 USER_NOT_FOUND_ERROR_CODE --------------------------------------------------


async def test_102_any_method_but_join_and_ping_before_join(peer: OpenPeer) -> None:
    alice = await peer()
    cases: list[tuple[str, dict[str, Any]]] = [
        ("publish", {"audio": True}),
        ("leave", {}),
        ("getSessionState", {}),
        ("sendMessage", {"text": "hi"}),
        ("simulateScenario", {"scenario": "internalError"}),
    ]
    for method, params in cases:
        error = await alice.fail(method, **params)
        check(error, 102, "USER_NOT_FOUND_ERROR_CODE", method)
    await alice.call("ping")
    await alice.join("room", "alice")


async def test_102_target_or_recipient_not_in_the_session(
    server: SignalingServer, peer: OpenPeer
) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    error = await alice.fail("subscribe", target="p_ghost")
    check(error, 102, "USER_NOT_FOUND_ERROR_CODE", "subscribe")
    assert error["data"]["participantId"] == "p_ghost"
    error = await alice.fail("unsubscribe", target="p_ghost")
    check(error, 102, "USER_NOT_FOUND_ERROR_CODE", "unsubscribe")
    error = await alice.fail("sendMessage", text="hi", to=[bob.participant_id, "p_ghost"])
    check(error, 102, "USER_NOT_FOUND_ERROR_CODE", "sendMessage")
    assert error["data"]["participantId"] == "p_ghost"
    await bob.quiet()  # nothing was delivered
    assert server.rooms.stats()["exchanges"] == 0


# --- 103 USER_CLOSED_ERROR_CODE ------------------------------------------------------


async def test_103_publisher_leaves_mid_exchange(server: SignalingServer, peer: OpenPeer) -> None:
    pub, sub = await publisher_and_subscriber(peer)
    exchange = (await sub.call("subscribe", target=pub.participant_id))["exchangeId"]
    await pub.call("leave")
    left = await sub.note("participantLeft")
    assert left["reason"] == "left"
    note = await sub.note("sessionError")
    check(note, 103, "USER_CLOSED_ERROR_CODE")
    assert note["data"]["exchangeId"] == exchange
    assert note["data"]["participantId"] == pub.participant_id
    # A request crossing the leave gets 103 as its response.
    error = await sub.fail("sdpAnswer", exchangeId=exchange, sdp="v=0")
    check(error, 103, "USER_CLOSED_ERROR_CODE", "sdpAnswer")
    assert server.rooms.exchange_state(exchange) is None


async def test_103_subscriber_leaves_mid_exchange(peer: OpenPeer) -> None:
    pub, sub = await publisher_and_subscriber(peer)
    exchange = (await sub.call("subscribe", target=pub.participant_id))["exchangeId"]
    await pub.note("subscribeRequest")
    await pub.call("sdpOffer", exchangeId=exchange, sdp="v=0")
    await sub.call("leave")
    assert (await pub.note("participantLeft"))["participantId"] == sub.participant_id
    note = await pub.note("sessionError")
    check(note, 103, "USER_CLOSED_ERROR_CODE")
    assert note["data"]["exchangeId"] == exchange
    error = await pub.fail("iceCandidate", exchangeId=exchange, candidate="c")
    check(error, 103, "USER_CLOSED_ERROR_CODE", "iceCandidate")


# --- 104 EXISTING_USER_IN_SESSION_ERROR_CODE ----------------------------------------------


async def test_104_duplicate_name_even_inside_the_resume_window(
    server: SignalingServer, peer: OpenPeer
) -> None:
    alice, imposter = await peer(), await peer()
    await alice.join("room", "alice")
    error = await imposter.fail("join", token=token(), name="alice")
    check(error, 104, "EXISTING_USER_IN_SESSION_ERROR_CODE", "join")
    assert "participantId" not in error["data"]  # the holder of the name is not disclosed
    await alice.ws.close()  # lost without leave: the seat waits for a resume
    await until(lambda: server.rooms.is_connected(alice.participant_id or "") is False, imposter)
    error = await imposter.fail("join", token=token(), name="alice")
    check(error, 104, "EXISTING_USER_IN_SESSION_ERROR_CODE", "join")
    assert (await imposter.join("room", "alice-2"))["participants"][0]["name"] == "alice"


# --- 105 USER_NOT_STREAMING_ERROR_CODE ------------------------------------------------------


async def test_105_publish_with_neither_audio_nor_video(peer: OpenPeer) -> None:
    alice = await peer()
    await alice.join("room", "alice")
    check(
        await alice.fail("publish", audio=False, video=False), 105, "USER_NOT_STREAMING_ERROR_CODE"
    )
    check(await alice.fail("publish"), 105, "USER_NOT_STREAMING_ERROR_CODE", "publish")
    state = await alice.call("getSessionState")
    assert state["participants"][0]["streams"] is None


async def test_105_answer_with_no_offer_on_the_exchange(
    server: SignalingServer, peer: OpenPeer
) -> None:
    pub, sub = await publisher_and_subscriber(peer)
    exchange = (await sub.call("subscribe", target=pub.participant_id))["exchangeId"]
    error = await sub.fail("sdpAnswer", exchangeId=exchange, sdp="v=0")
    check(error, 105, "USER_NOT_STREAMING_ERROR_CODE", "sdpAnswer")
    assert error["data"]["exchangeId"] == exchange
    assert server.rooms.exchange_state(exchange) is not None
    assert server.rooms.exchange_state(exchange).value == "awaiting-offer"  # type: ignore[union-attr]


async def test_105_subscribe_to_a_participant_that_publishes_nothing(peer: OpenPeer) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    error = await alice.fail("subscribe", target=bob.participant_id)
    check(error, 105, "USER_NOT_STREAMING_ERROR_CODE", "subscribe")
    assert error["data"]["participantId"] == bob.participant_id
    await bob.quiet()  # no subscribeRequest


async def test_105_unpublish_when_not_publishing(peer: OpenPeer) -> None:
    alice = await peer()
    await alice.join("room", "alice")
    check(await alice.fail("unpublish"), 105, "USER_NOT_STREAMING_ERROR_CODE", "unpublish")
    await alice.call("publish", audio=True)
    await alice.call("unpublish")
    check(await alice.fail("unpublish"), 105, "USER_NOT_STREAMING_ERROR_CODE", "unpublish")


# --- 106 USER_NOT_AUTHORIZED_ERROR_CODE ---------------------------------------------------------


async def test_106_sync_data_without_the_synchronizer_role(peer: OpenPeer) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice", roles=["moderator"])
    await bob.join("room", "bob")
    error = await alice.fail("sendSyncData", position=1.0, playing=True)
    check(error, 106, "USER_NOT_AUTHORIZED_ERROR_CODE", "sendSyncData")
    await bob.quiet()
    assert "syncState" not in await bob.call("getSessionState")


async def test_106_publish_by_a_viewer(peer: OpenPeer) -> None:
    viewer = await peer()
    await viewer.join("room", "v", participant_type="viewer")
    error = await viewer.fail("publish", audio=True, video=True)
    check(error, 106, "USER_NOT_AUTHORIZED_ERROR_CODE", "publish")


async def test_106_close_session_without_the_moderator_role(
    server: SignalingServer, peer: OpenPeer
) -> None:
    alice = await peer()
    await alice.join("room", "alice", roles=["synchronizer"])
    error = await alice.fail("closeSession")
    check(error, 106, "USER_NOT_AUTHORIZED_ERROR_CODE", "closeSession")
    assert server.rooms.session_state("room") is not None


async def test_106_join_with_an_unknown_secret(peer: OpenPeer) -> None:
    alice = await peer()
    error = await alice.fail(
        "join", token=token(), name="alice", oldParticipantSecret="s_unknown", lastSeq=0
    )
    check(error, 106, "USER_NOT_AUTHORIZED_ERROR_CODE", "join")
    assert (await alice.join("room", "alice"))["resumed"] is False


# --- 107 / 108 permission denied -----------------------------------------------------------------


async def test_107_publish_video_without_the_video_grant(peer: OpenPeer) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice", video=False)
    await bob.join("room", "bob")
    error = await alice.fail("publish", audio=True, video=True)
    check(error, 107, "USER_VIDEO_PERMISSION_DENIED_ERROR_CODE", "publish")
    await bob.quiet()
    await alice.call("publish", audio=True, video=False)


async def test_108_publish_audio_without_the_audio_grant(peer: OpenPeer) -> None:
    alice = await peer()
    await alice.join("room", "alice", audio=False)
    error = await alice.fail("publish", audio=True, video=False)
    check(error, 108, "USER_AUDIO_PERMISSION_DENIED_ERROR_CODE", "publish")
    assert (await alice.call("publish", video=True))["streamId"]


# --- 203 / 204 / 206 session ------------------------------------------------------------------


async def test_203_close_session_flow_and_later_joins(
    server: SignalingServer, peer: OpenPeer
) -> None:
    mod, bob = await peer(), await peer()
    await mod.join("room", "mod", roles=["moderator"])
    await bob.join("room", "bob")
    await mod.note("participantJoined")
    request_id = 4242
    await mod.send_raw(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "closeSession",
                "params": {"reason": "show is over"},
            }
        )
    )
    # The moderator's answer comes before anything else on its connection.
    raw = json.loads(await mod.ws.recv())
    assert raw == {"jsonrpc": "2.0", "id": request_id, "result": {}}
    for member in (mod, bob):
        error = await member.note("sessionError")
        check(error, 203, "SESSION_CLOSED_ERROR_CODE")
        closed = await member.note("sessionClosed")
        assert closed["sessionId"] == "room"
        assert closed["reason"] == "show is over"
        assert closed["seq"] == error["seq"] + 1
        assert await member.closed() == 1000
    assert server.rooms.session_state("room") is None
    late = await peer()
    check(await late.fail("join", token=token(), name="late"), 203, "SESSION_CLOSED_ERROR_CODE")
    assert bob.secret is not None
    error = await late.fail(
        "join", token=token(), name="bob", oldParticipantSecret=bob.secret, lastSeq=0
    )
    check(error, 203, "SESSION_CLOSED_ERROR_CODE", "join")
    await late.join("another-room", "late")


async def test_204_no_create_grant(server: SignalingServer, peer: OpenPeer) -> None:
    alice, bob = await peer(), await peer()
    error = await alice.fail("join", token=token("room", create=False), name="alice")
    check(error, 204, "SESSION_CANNOT_BE_CREATED_ERROR_CODE", "join")
    assert server.rooms.stats()["sessions"] == 0
    await bob.join("room", "bob")
    # Joining a session that exists needs no create grant.
    assert (await alice.call("join", token=token("room", create=False), name="alice"))["sessionId"]


async def test_204_at_max_sessions(make_server: ServerFactory, make_peer: MakePeer) -> None:
    server = await make_server(max_sessions=1)
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.join("one", "alice")
    check(
        await bob.fail("join", token=token("two"), name="bob"),
        204,
        "SESSION_CANNOT_BE_CREATED_ERROR_CODE",
        "join",
    )
    await bob.join("one", "bob")  # an existing session still takes members
    await alice.call("leave")
    await alice.closed()
    await bob.call("leave")
    await bob.closed()
    carol = await make_peer(server)
    await carol.join("two", "carol")  # the freed slot can be used


async def test_206_streaming_limit_ignores_viewers(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(max_streaming_participants=1)
    peers = [await make_peer(server) for _ in range(4)]
    await peers[0].join("room", "a")
    check(await peers[1].fail("join", token=token(), name="b"), 206, "SESSION_IS_FULL_ERROR_CODE")
    error = await peers[1].fail("join", token=token(), name="b", participantType="screen")
    check(error, 206, "SESSION_IS_FULL_ERROR_CODE", "join")
    await peers[2].join("room", "v1", participant_type="viewer")
    await peers[3].join("room", "v2", participant_type="viewer")
    state = server.rooms.session_state("room")
    assert state is not None and len(state.participants) == 3


async def test_206_limit_from_the_token_that_creates_the_session(
    server: SignalingServer, peer: OpenPeer
) -> None:
    first, second, third = await peer(), await peer(), await peer()
    await first.join("room", "a", max_streaming=2)
    await second.join("room", "b", max_streaming=50)  # only the creator's token counts
    check(await third.fail("join", token=token(), name="c"), 206, "SESSION_IS_FULL_ERROR_CODE")


# --- 303 MEDIA_ENDPOINT_ERROR_CODE -------------------------------------------------------------


async def test_303_subscribe_when_already_subscribed_or_in_progress(
    server: SignalingServer, peer: OpenPeer
) -> None:
    pub, sub = await publisher_and_subscriber(peer)
    exchange = (await sub.call("subscribe", target=pub.participant_id))["exchangeId"]
    error = await sub.fail("subscribe", target=pub.participant_id)
    check(error, 303, "MEDIA_ENDPOINT_ERROR_CODE", "subscribe")
    assert error["data"]["exchangeId"] == exchange
    await pub.call("sdpOffer", exchangeId=exchange, sdp="offer")
    await sub.call("sdpAnswer", exchangeId=exchange, sdp="answer")
    assert server.rooms.exchange_state(exchange).value == "established"  # type: ignore[union-attr]
    await pub.note("subscribeRequest")
    answer = await pub.note("sdpAnswer")
    assert answer == {
        "exchangeId": exchange,
        "from": sub.participant_id,
        "sdp": "answer",
        "seq": answer["seq"],
    }
    error = await sub.fail("subscribe", target=pub.participant_id)
    check(error, 303, "MEDIA_ENDPOINT_ERROR_CODE", "subscribe")
    await sub.call("unsubscribe", target=pub.participant_id)
    ended = await pub.note("subscriptionEnded")
    assert ended["exchangeId"] == exchange
    assert ended["participantId"] == sub.participant_id
    assert (await sub.call("subscribe", target=pub.participant_id))["exchangeId"] != exchange


async def test_303_exchange_not_completed_within_sdp_timeout(
    server: SignalingServer, peer: OpenPeer
) -> None:
    pub, sub = await publisher_and_subscriber(peer)
    started = time.monotonic()
    exchange = (await sub.call("subscribe", target=pub.participant_id))["exchangeId"]
    await pub.note("subscribeRequest")
    await pub.call("sdpOffer", exchangeId=exchange, sdp="offer")
    await sub.note("sdpOffer")
    for side, other in ((pub, sub), (sub, pub)):
        note = await side.note("sessionError")
        check(note, 303, "MEDIA_ENDPOINT_ERROR_CODE")
        assert note["data"]["exchangeId"] == exchange
        assert note["data"]["participantId"] == other.participant_id
    assert time.monotonic() - started >= 0.5
    assert server.rooms.exchange_state(exchange) is None
    error = await sub.fail("sdpAnswer", exchangeId=exchange, sdp="too late")
    check(error, 303, "MEDIA_ENDPOINT_ERROR_CODE", "sdpAnswer")
    # A new exchange with the same pair may start.
    assert (await sub.call("subscribe", target=pub.participant_id))["exchangeId"]


# --- 1100 / 1101 tokens ---------------------------------------------------------------------------


async def test_1100_expired_token(server: SignalingServer, peer: OpenPeer) -> None:
    alice = await peer()
    error = await alice.fail("join", token=token("room", ttl=-5), name="alice")
    check(error, 1100, "TOKEN_EXPIRED", "join")
    assert server.rooms.stats()["sessions"] == 0
    await alice.join("room", "alice")


async def test_1101_token_not_a_valid_signed_jwt_or_missing_a_claim(
    server: SignalingServer, peer: OpenPeer
) -> None:
    alice = await peer()
    bad_tokens = [
        "not-a-jwt",
        jwt.encode(
            {"sid": "room", "exp": time.time() + 86400}, "another-secret-0123456789abcdef-xyz"
        ),
        jwt.encode({"exp": time.time() + 86400}, SECRET),
        jwt.encode({"sid": "room"}, SECRET),
    ]
    for bad in bad_tokens:
        error = await alice.fail("join", token=bad, name="alice")
        check(error, 1101, "TOKEN_DATA_IS_NOT_VALID", "join")
    assert server.rooms.stats()["sessions"] == 0
    await alice.join("room", "alice")


async def test_1101_claims_of_the_wrong_type_or_out_of_range(
    server: SignalingServer, peer: OpenPeer
) -> None:
    alice = await peer()
    exp = time.time() + 86400
    bad_claims: list[dict[str, Any]] = [
        {"sid": 5, "exp": exp},
        {"sid": "room", "exp": "tomorrow"},
        {"sid": "room", "exp": True},
        {"sid": "room", "exp": 10**400},
        {"sid": "room", "exp": exp, "iat": 10**400},
        {"sid": "room", "exp": exp, "roles": "moderator"},
        {"sid": "room", "exp": exp, "grants": {"video": "no"}},
        {"sid": "room", "exp": exp, "max_streaming": 2.5},
        {"sid": "room", "exp": exp, "sub": 7},
        {"sid": "room", "exp": exp, "nbf": exp},
    ]
    for claims in bad_claims:
        error = await alice.fail("join", token=jwt.encode(claims, SECRET), name="alice")
        check(error, 1101, "TOKEN_DATA_IS_NOT_VALID", "join")
        assert error["message"] != "internal server error"
    assert server.rooms.stats()["sessions"] == 0
    # An aud claim is not part of the protocol and refuses nothing.
    joined = await alice.call(
        "join", token=jwt.encode({"sid": "room", "exp": exp, "aud": "elsewhere"}, SECRET), name="a"
    )
    assert joined["sessionId"] == "room"
