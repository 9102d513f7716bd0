"""The everyday flow over real loopback websockets: join, publish, notify, leave."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

import pytest

from roomsignal.server import SignalingServer

from .conftest import Peer

OpenPeer = Callable[[], Awaitable[Peer]]


async def test_ping_before_join_gives_server_time(peer: OpenPeer) -> None:
    alice = await peer()
    before = time.time()
    result = await alice.call("ping")
    assert before - 1 <= result["serverTime"] <= time.time() + 1


async def test_subprotocol_is_selected_when_offered(
    server: SignalingServer, make_peer: Callable[..., Awaitable[Peer]]
) -> None:
    offered = await make_peer(server)
    assert offered.ws.subprotocol == "roomsignal.v1"
    plain = await make_peer(server, subprotocol=False)
    assert plain.ws.subprotocol is None
    await plain.call("ping")


async def test_join_returns_seat_and_others_see_it(server: SignalingServer, peer: OpenPeer) -> None:
    alice, bob = await peer(), await peer()
    first = await alice.join("room", "alice", roles=["moderator"])
    assert first["sessionId"] == "room"
    assert first["participants"] == []
    assert first["seq"] == 0
    assert first["resumed"] is False
    assert first["roles"] == ["moderator"]
    assert first["participantType"] == "full"
    second = await bob.join("room", "bob", participant_type="viewer")
    assert [p["participantId"] for p in second["participants"]] == [alice.participant_id]
    joined = await alice.note("participantJoined")
    assert joined["seq"] == 1
    assert joined["participant"] == {
        "participantId": bob.participant_id,
        "name": "bob",
        "participantType": "viewer",
        "roles": [],
        "streams": None,
        "metadata": {},
    }
    state = await bob.call("getSessionState")
    assert {p["name"] for p in state["participants"]} == {"alice", "bob"}
    assert server.rooms.stats()["participants"] == 2


async def test_publish_unpublish_notify_others_with_increasing_seq(peer: OpenPeer) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    await alice.note("participantJoined")
    published = await bob.call("publish", audio=True, video=False)
    assert published["streamId"]
    note = await alice.note("streamPublished")
    assert note == {"participantId": bob.participant_id, "audio": True, "video": False, "seq": 2}
    again = await bob.call("publish", audio=True, video=True)
    assert again["streamId"] == published["streamId"]
    assert (await alice.note("streamPublished"))["video"] is True
    assert await bob.call("unpublish") == {}
    note = await alice.note("streamUnpublished")
    assert note == {"participantId": bob.participant_id, "seq": 4}
    await bob.quiet()


async def test_leave_answers_then_closes_1000_and_others_see_left(
    server: SignalingServer, peer: OpenPeer
) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    assert await bob.call("leave") == {}
    assert await bob.closed() == 1000
    await alice.note("participantJoined")
    left = await alice.note("participantLeft")
    assert left["participantId"] == bob.participant_id
    assert left["reason"] == "left"
    assert await alice.call("leave") == {}
    assert await alice.closed() == 1000
    assert server.rooms.stats()["sessions"] == 0


async def test_messages_to_all_and_private(peer: OpenPeer) -> None:
    alice, bob, carol = await peer(), await peer(), await peer()
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    await carol.join("room", "carol")
    await alice.call("sendMessage", text="hi all")
    await bob.note("participantJoined")
    for other in (bob, carol):
        note = await other.note("messageReceived")
        assert note == {
            "from": alice.participant_id,
            "text": "hi all",
            "private": False,
            "seq": note["seq"],
        }
    await alice.call("sendMessage", text="psst", to=[carol.participant_id])
    private = await carol.note("messageReceived")
    assert private["private"] is True
    assert private["text"] == "psst"
    await bob.quiet()


async def test_sync_data_reaches_others_and_becomes_sync_state(peer: OpenPeer) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice", roles=["synchronizer"])
    await bob.join("room", "bob")
    await alice.note("participantJoined")
    await alice.call("sendSyncData", position=12.5, playing=True, mediaId="movie")
    sync = await bob.note("syncData")
    assert sync["from"] == alice.participant_id
    assert sync["position"] == 12.5
    assert sync["playing"] is True
    assert sync["rate"] == 1.0
    assert sync["mediaId"] == "movie"
    assert isinstance(sync["serverTime"], float)
    await alice.quiet()
    state = await bob.call("getSessionState")
    assert state["syncState"]["position"] == 12.5
    carol = await peer()
    joined = await carol.join("room", "carol")
    assert joined["syncState"]["from"] == alice.participant_id


async def test_session_errors_burst_is_numbered_in_order(peer: OpenPeer) -> None:
    alice = await peer()
    await alice.join("room", "alice")
    assert (
        await alice.call("simulateScenario", scenario="sessionErrors", code=303, count=2000) == {}
    )
    for seq in range(1, 2001):
        note = await alice.note("sessionError")
        assert note["seq"] == seq
        assert note["code"] == 303
        assert note["data"]["name"] == "MEDIA_ENDPOINT_ERROR_CODE"
    await alice.quiet()


async def test_session_errors_with_unknown_code_keeps_the_number(peer: OpenPeer) -> None:
    alice = await peer()
    await alice.join("room", "alice")
    await alice.call("simulateScenario", scenario="sessionErrors", code=4242)
    note = await alice.note("sessionError")
    assert note["code"] == 4242
    assert note["data"]["name"] == "UNKNOWN_4242"


async def test_simulate_without_code_or_unknown_scenario_is_invalid_params(peer: OpenPeer) -> None:
    alice = await peer()
    # A params check, so it comes before 102 (section 2).
    assert (await alice.fail("simulateScenario", scenario="meteorStrike"))["code"] == -32602
    await alice.join("room", "alice")
    error = await alice.fail("simulateScenario", scenario="sessionErrors")
    assert error["code"] == -32602
    assert error["data"]["errors"][0]["loc"] == ["params", "code"]
    error = await alice.fail("simulateScenario", scenario="meteorStrike")
    assert error["code"] == -32602
    assert error["data"]["name"] == "INVALID_PARAMS"
    await alice.call("ping")


async def test_internal_error_is_201_without_traceback_and_logged(
    peer: OpenPeer, caplog: pytest.LogCaptureFixture
) -> None:
    alice = await peer()
    await alice.join("room", "alice")
    with caplog.at_level(logging.ERROR, logger="roomsignal.server"):
        error = await alice.fail("simulateScenario", scenario="internalError")
    assert error["code"] == 201
    assert error["data"] == {
        "name": "SESSION_GENERIC_ERROR_CODE",
        "method": "simulateScenario",
    }
    assert "Traceback" not in json.dumps(error)
    assert any(record.exc_info for record in caplog.records)
    assert (await alice.call("getSessionState"))["participants"][0]["name"] == "alice"


async def test_connection_drop_aborts_without_close_frame_and_keeps_the_seat(
    server: SignalingServer, peer: OpenPeer
) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    await bob.send_raw(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 99,
                "method": "simulateScenario",
                "params": {"scenario": "connectionDrop"},
            }
        )
    )
    assert await bob.closed() is None
    assert 99 not in bob.responses
    assert bob.participant_id is not None
    assert server.rooms.is_connected(bob.participant_id) is False
    await alice.note("participantJoined")
    await alice.quiet()


async def test_unsubscribe_without_a_subscription_is_a_quiet_success(peer: OpenPeer) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    await alice.note("participantJoined")
    assert await bob.call("unsubscribe", target=alice.participant_id) == {}
    await alice.quiet()


async def test_private_message_to_a_list_including_yourself(peer: OpenPeer) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    await alice.note("participantJoined")
    ids = [alice.participant_id, alice.participant_id]
    assert await alice.call("sendMessage", text="note to self", to=ids) == {}
    note = await alice.note("messageReceived")
    assert note["private"] is True
    assert note["from"] == alice.participant_id
    await alice.quiet()  # delivered once, duplicates removed
    await bob.quiet()
