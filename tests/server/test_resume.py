"""Reconnection (PROTOCOL.md section 8): resume, window expiry, replay gap, takeover, keepalive."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from roomsignal.server import SignalingServer

from .conftest import Peer, ServerFactory, token, until

MakePeer = Callable[[SignalingServer], Awaitable[Peer]]


async def resume(peer: Peer, old: Peer, last_seq: int, **kw: Any) -> dict[str, Any]:
    assert old.secret is not None
    answer = await peer.request(
        "join",
        {
            "token": token("room"),
            "name": kw.get("name", "ignored-on-resume"),
            "oldParticipantSecret": old.secret,
            "lastSeq": last_seq,
        },
    )
    return answer


async def pair(server: SignalingServer, make_peer: MakePeer) -> tuple[Peer, Peer]:
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    await alice.note("participantJoined")
    return alice, bob


async def test_resume_within_the_window_replays_missed_notifications_first(
    server: SignalingServer, make_peer: MakePeer
) -> None:
    alice, bob = await pair(server, make_peer)
    await alice.call("sendMessage", text="m1")
    assert (await bob.note("messageReceived"))["seq"] == 1
    await bob.drop()
    for text in ("m2", "m3"):
        await alice.call("sendMessage", text=text)
    await alice.call("publish", audio=True)
    assert server.rooms.last_seq(bob.participant_id or "") == 4
    again = await make_peer(server)
    answer = await resume(again, bob, last_seq=1)
    result = answer["result"]
    assert result["participantId"] == bob.participant_id
    assert result["resumed"] is True
    assert result["seq"] == 4
    assert result["participantSecret"] == bob.secret
    assert result["resumeWindow"] == server.config.resume_window
    assert [p["name"] for p in result["participants"]] == ["alice"]
    await alice.call("sendMessage", text="m4")
    replayed = [await again.note() for _ in range(4)]
    assert [n["seq"] for n in replayed] == [2, 3, 4, 5]
    assert [n.get("text") for n in replayed] == ["m2", "m3", None, "m4"]
    await alice.quiet()  # nobody saw a leave or a join
    assert server.rooms.is_connected(bob.participant_id or "") is True


async def test_resume_replays_a_burst_from_last_seq(
    server: SignalingServer, make_peer: MakePeer
) -> None:
    _, bob = await pair(server, make_peer)
    await bob.call("simulateScenario", scenario="sessionErrors", code=101, count=50)
    for seq in range(1, 11):
        assert (await bob.note("sessionError"))["seq"] == seq
    await bob.drop()
    again = await make_peer(server)
    result = (await resume(again, bob, last_seq=10))["result"]
    assert result["seq"] == 50
    assert [(await again.note("sessionError"))["seq"] for _ in range(40)] == list(range(11, 51))
    await again.quiet()


async def test_after_the_window_others_see_disconnected_and_the_secret_gives_106(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(resume_window=0.3)
    alice, bob = await pair(server, make_peer)
    await bob.ws.close()  # closed without leave
    left = await alice.note("participantLeft")
    assert left == {"participantId": bob.participant_id, "reason": "disconnected", "seq": 2}
    again = await make_peer(server)
    error = (await resume(again, bob, last_seq=0))["error"]
    assert error["code"] == 106
    assert error["data"]["name"] == "USER_NOT_AUTHORIZED_ERROR_CODE"
    assert (await again.join("room", "bob"))["resumed"] is False


async def test_the_last_seat_expiring_removes_the_session(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(resume_window=0.2)
    alice, probe = await make_peer(server), await make_peer(server)
    await alice.join("room", "alice")
    await alice.drop()
    assert server.rooms.stats()["sessions"] == 1
    await until(lambda: server.rooms.stats()["sessions"] == 0, probe)
    assert server.rooms.stats() == {
        "sessions": 0,
        "participants": 0,
        "connections": 0,
        "exchanges": 0,
        "closedSessions": 0,
    }


async def test_last_seq_older_than_the_buffer_is_a_replay_gap(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(replay_buffer=2)
    alice, bob = await pair(server, make_peer)
    await bob.drop()
    for n in range(5):
        await alice.call("sendMessage", text=f"m{n}")
    again = await make_peer(server)
    error = (await resume(again, bob, last_seq=2))["error"]
    assert error["code"] == 106
    assert error["data"]["name"] == "USER_NOT_AUTHORIZED_ERROR_CODE"
    assert error["data"]["reason"] == "replayGap"
    assert error["data"]["participantId"] == bob.participant_id
    left = await alice.note("participantLeft")
    assert left["participantId"] == bob.participant_id
    assert left["reason"] == "disconnected"
    fresh = await again.join("room", "bob")  # same name, same connection, afresh
    assert fresh["resumed"] is False
    assert fresh["resumeWindow"] == server.config.resume_window  # fresh joins say it too
    assert fresh["participantId"] != bob.participant_id
    assert fresh["seq"] == 0
    # lastSeq 3 would have been fillable: the buffer held seqs 4 and 5.
    assert (await alice.note("participantJoined"))["participant"]["name"] == "bob"


async def test_resume_while_the_old_connection_looks_alive_takes_the_seat_over(
    server: SignalingServer, make_peer: MakePeer
) -> None:
    alice, bob = await pair(server, make_peer)
    await alice.call("sendMessage", text="before")
    await bob.note("messageReceived")
    again = await make_peer(server)
    result = (await resume(again, bob, last_seq=1))["result"]
    assert result["resumed"] is True
    assert result["seq"] == 1
    assert await bob.closed() == 4001
    assert bob.ws.protocol.close_rcvd is not None
    assert bob.ws.protocol.close_rcvd.reason == "replaced"
    await alice.call("sendMessage", text="after")
    note = await again.note("messageReceived")
    assert note == {"from": alice.participant_id, "text": "after", "private": False, "seq": 2}
    await alice.quiet()
    assert server.rooms.is_connected(bob.participant_id or "") is True


async def test_replay_gap_while_the_old_connection_is_alive_ends_it(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(replay_buffer=1)
    alice, bob = await pair(server, make_peer)
    for n in range(3):
        await alice.call("sendMessage", text=f"m{n}")
    again = await make_peer(server)
    error = (await resume(again, bob, last_seq=0))["error"]
    assert error["data"]["reason"] == "replayGap"
    assert await bob.closed() == 4001
    assert (await alice.note("participantLeft"))["reason"] == "disconnected"


async def test_a_peer_that_stops_answering_pings_is_disconnected_not_left(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(ping_interval=0.1, ping_timeout=0.1, close_timeout=0.2)
    alice, bob = await pair(server, make_peer)
    bob.ws.transport.pause_reading()  # bob's side goes silent: no pongs
    await until(lambda: server.rooms.is_connected(bob.participant_id or "") is False, alice)
    await alice.quiet()  # no participantLeft: the seat waits for a resume
    state = server.rooms.session_state("room")
    assert state is not None
    assert bob.participant_id in {p.participant_id for p in state.participants}
    bob.ws.transport.abort()


async def test_frames_after_leave_are_ignored_and_take_no_seat(
    server: SignalingServer, make_peer: MakePeer
) -> None:
    alice, probe = await make_peer(server), await make_peer(server)
    await alice.join("room", "alice")
    # leave and, before the close completes, a join: the join must not take a seat.
    await alice.send_raw('{"jsonrpc":"2.0","id":1,"method":"leave"}')
    await alice.send_raw(
        '{"jsonrpc":"2.0","id":2,"method":"join","params":'
        f'{{"token":"{token("room")}","name":"alice"}}}}'
    )
    assert (await alice.response(1))["result"] == {}
    assert await alice.closed() == 1000
    assert 2 not in alice.responses
    await until(lambda: server.rooms.stats()["participants"] == 0, probe)
    assert (await probe.join("room", "alice"))["participants"] == []


async def test_frames_queued_behind_a_connection_drop_are_not_handled(
    server: SignalingServer, make_peer: MakePeer
) -> None:
    bob, alice = await make_peer(server), await make_peer(server)
    await bob.join("room", "bob")
    frames: list[dict[str, Any]] = [
        {"id": 1, "method": "join", "params": {"token": token("room"), "name": "alice"}},
        {"id": 2, "method": "simulateScenario", "params": {"scenario": "connectionDrop"}},
        {"id": 3, "method": "join", "params": {"token": token("room"), "name": "ghost"}},
    ]
    # One TCP write: the server holds all three frames before it handles the first.
    protocol = alice.ws.protocol
    for frame in frames:
        protocol.send_text(json.dumps({"jsonrpc": "2.0", **frame}).encode())
    alice.ws.transport.write(b"".join(protocol.data_to_send()))
    assert await alice.closed() is None
    joined = (await bob.note("participantJoined"))["participant"]
    assert joined["name"] == "alice"
    # Once alice's connection is gone, its seat waits and there is no other.
    await until(lambda: server.connection_count == 1, bob)
    assert server.rooms.is_connected(joined["participantId"]) is False
    assert server.rooms.stats()["participants"] == 2
    state = server.rooms.session_state("room")
    assert state is not None
    assert sorted(p.name for p in state.participants) == ["alice", "bob"]
    await bob.quiet()  # no participantJoined for a ghost


async def send(peer: Peer, request_id: int | str, method: str, **params: Any) -> dict[str, Any]:
    """A request with the id the caller chose (a client re-sending after a resume)."""
    frame = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    await peer.send_raw(json.dumps(frame))
    return await peer.response(request_id)


async def test_a_request_sent_again_after_a_resume_is_answered_once(
    server: SignalingServer, make_peer: MakePeer
) -> None:
    """Section 8, requests across a drop: the same id gets the same answer, handled once."""
    alice, bob = await pair(server, make_peer)
    first = await send(bob, 9001, "sendMessage", text="once")
    assert first["result"] == {}
    refused = await send(bob, 9002, "subscribe", target="p_nobody")
    assert refused["error"]["code"] == 102
    await bob.drop()
    again = await make_peer(server)
    assert (await resume(again, bob, last_seq=0))["result"]["resumed"] is True
    assert await send(again, 9001, "sendMessage", text="once") == first
    assert await send(again, 9002, "subscribe", target="p_nobody") == refused  # errors too
    assert (await alice.note("messageReceived"))["text"] == "once"
    await alice.quiet()  # the message was delivered once, not twice
    # An id the seat never used is handled as new.
    assert (await send(again, 9003, "sendMessage", text="new"))["result"] == {}
    assert (await alice.note("messageReceived"))["text"] == "new"


async def test_read_only_answers_are_not_kept(server: SignalingServer, make_peer: MakePeer) -> None:
    """getSessionState and ping change nothing: answered afresh, never held per seat."""
    alice, bob = await pair(server, make_peer)
    await send(bob, 800, "getSessionState")
    await send(bob, 801, "ping")
    member = server.rooms._members[bob.participant_id or ""]
    assert not member.answered
    await alice.call("publish", audio=True, video=False)
    state = (await send(bob, 800, "getSessionState"))["result"]  # the state of now
    streams = {p["participantId"]: p["streams"] for p in state["participants"]}
    assert streams[alice.participant_id] == {"audio": True, "video": False}


async def test_a_connection_drop_sent_again_does_not_drop_twice(
    server: SignalingServer, make_peer: MakePeer
) -> None:
    _alice, bob = await pair(server, make_peer)
    frame = {"jsonrpc": "2.0", "id": 77, "method": "simulateScenario"}
    await bob.send_raw(json.dumps({**frame, "params": {"scenario": "connectionDrop"}}))
    assert await bob.closed() is None
    again = await make_peer(server)
    assert (await resume(again, bob, last_seq=0))["result"]["resumed"] is True
    answer = await send(again, 77, "simulateScenario", scenario="connectionDrop")
    assert answer["result"] == {}  # answered as handled, and the connection lives
    await again.quiet()


async def test_a_resume_join_is_never_answered_from_the_cache(
    server: SignalingServer, make_peer: MakePeer
) -> None:
    _alice, bob = await pair(server, make_peer)
    await send(bob, 500, "sendMessage", text="m")
    await bob.drop()
    again = await make_peer(server)
    assert bob.secret is not None
    params = {"token": token("room"), "name": "bob", "oldParticipantSecret": bob.secret}
    answer = await send(again, 500, "join", **params, lastSeq=0)
    assert answer["result"]["resumed"] is True  # a join, handled: not the cached {}


async def test_the_answers_kept_are_bounded_like_the_replay(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    """Only the last ``replay_buffer`` answers are kept: an older id is handled as new."""
    server = await make_server(replay_buffer=3)
    alice, bob = await pair(server, make_peer)
    for n in range(1, 5):
        await send(bob, 600 + n, "sendMessage", text=f"m{n}")
        assert (await alice.note("messageReceived"))["text"] == f"m{n}"
    await send(bob, 601, "sendMessage", text="m1")  # forgotten: handled again
    assert (await alice.note("messageReceived"))["text"] == "m1"
    await send(bob, 604, "sendMessage", text="m4")  # kept: not handled again
    await alice.quiet()


async def test_the_answers_kept_are_bounded_in_bytes(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(replay_buffer_bytes=4096)
    _alice, bob = await pair(server, make_peer)
    for n in range(200):  # refused (no such target): each answer a ~150-byte error
        await send(bob, 1000 + n, "subscribe", target=f"p_nobody{n}")
    member = server.rooms._members[bob.participant_id or ""]
    assert member.answered is not None
    assert 0 < member.answered_bytes <= 4096
    assert member.answered_bytes == sum(len(f) for f in member.answered.values())
    assert 1199 in member.answered and 1000 not in member.answered


async def test_long_string_ids_count_toward_the_byte_bound(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    """A {} answer is kept as a marker, but its id is held too: it counts."""
    server = await make_server(replay_buffer_bytes=64 * 1024)
    alice, bob = await pair(server, make_peer)
    for n in range(8):
        request_id = f"{n:04d}" + "x" * 20_000
        assert (await send(bob, request_id, "sendMessage", text="m"))["result"] == {}
        await alice.note("messageReceived")
    member = server.rooms._members[bob.participant_id or ""]
    assert member.answered is not None and len(member.answered) == 3  # 3 x 20 KB fit in 64 KB
    assert member.answered_bytes <= 64 * 1024
