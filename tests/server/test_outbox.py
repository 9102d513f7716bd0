"""Large fan-outs go through the transport's outbox (server/_outbox.py): what the wire keeps.

A room of more than 32 members makes every join and chat message a large
fan-out, held per connection until the loop iteration ends and written in
chunks; a sender's pipelined requests are handled before its handler
yields. Nothing on the wire may change: every member gets every frame once,
in ``seq`` order; a close, a takeover or a shutdown comes after the frames
numbered before it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from roomsignal.server import SignalingServer
from roomsignal.server._outbox import Outbox

from .conftest import Peer

OpenPeer = Callable[[], Awaitable[Peer]]
MEMBERS = 40  # past the 32 effects written at once
MESSAGES = 30  # 40 x 30 frames: more than one chunk of the outbox


async def _room(peer: OpenPeer, count: int = MEMBERS) -> list[Peer]:
    members = []
    for n in range(count):
        member = await peer()
        await member.join("big", f"m{n}", participant_type="viewer")
        members.append(member)
    return members


async def _joined_notes(members: list[Peer]) -> None:
    """Read every ``participantJoined`` the joins caused, checking each member's seqs."""
    for index, member in enumerate(members):
        seqs = [(await member.note("participantJoined"))["seq"] for _ in members[index + 1 :]]
        assert seqs == list(range(1, len(members) - index)), seqs


async def _pipeline(sender: Peer, method: str, count: int, first_id: int = 1000) -> None:
    for i in range(count):
        await sender.send_raw(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": first_id + i,
                    "method": method,
                    "params": {"text": f"line {i}"},
                }
            )
        )


async def test_pipelined_messages_to_a_large_room_arrive_once_each_in_seq_order(
    peer: OpenPeer,
) -> None:
    members = await _room(peer)
    await _joined_notes(members)
    sender, receivers = members[0], members[1:]
    await _pipeline(sender, "sendMessage", MESSAGES)
    for i in range(MESSAGES):
        assert (await sender.response(1000 + i))["result"] == {}
    for index, member in enumerate(receivers, start=1):
        first = MEMBERS - 1 - index  # the participantJoined it has read
        notes = [await member.note("messageReceived") for _ in range(MESSAGES)]
        assert [n["text"] for n in notes] == [f"line {i}" for i in range(MESSAGES)]
        assert [n["seq"] for n in notes] == list(range(first + 1, first + 1 + MESSAGES))
        assert {n["from"] for n in notes} == {sender.participant_id}
    for member in members:
        await member.quiet()


async def test_a_leave_behind_a_large_fanout_is_answered_after_it_then_closed(
    make_server: Callable[..., Awaitable[SignalingServer]],
    make_peer: Callable[[SignalingServer], Awaitable[Peer]],
) -> None:
    # Pacing off: the messages and the leave are handled in one batch.
    server = await make_server(max_fanout_per_second=0)

    async def open_peer() -> Peer:
        return await make_peer(server)

    members = await _room(open_peer)
    await _joined_notes(members)
    sender = members[0]
    await _pipeline(sender, "sendMessage", MESSAGES)
    await sender.send_raw(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "leave"}))
    for i in range(MESSAGES):
        assert (await sender.response(1000 + i))["result"] == {}
    assert "result" in await sender.response(1)
    assert await sender.closed() == 1000
    last = members[-1]
    for _ in range(MESSAGES):
        await last.note("messageReceived")
    left = await last.note("participantLeft")
    assert left["participantId"] == sender.participant_id
    await last.quiet()


async def test_a_shutdown_behind_a_large_fanout_comes_after_it_in_seq_order(
    make_server: Callable[..., Awaitable[SignalingServer]],
    make_peer: Callable[[SignalingServer], Awaitable[Peer]],
) -> None:
    server = await make_server()

    async def open_peer() -> Peer:
        return await make_peer(server)

    members = await _room(open_peer)
    await _joined_notes(members)
    sender = members[0]
    await _pipeline(sender, "sendMessage", MESSAGES)
    for i in range(MESSAGES):
        await sender.response(1000 + i)
    await server.close()
    for member in members[1:]:
        notes = [await member.note() for _ in range(MESSAGES + 2)]
        methods = [n for n in (note.get("text") for note in notes[:MESSAGES])]
        assert methods == [f"line {i}" for i in range(MESSAGES)]
        seqs = [n["seq"] for n in notes]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert notes[-1]["reason"] == "serverShutdown"
        assert await member.closed() == 1000


async def test_the_outbox_keeps_order_per_connection_and_flushes_in_chunks() -> None:
    written: list[tuple[int, list[str]]] = []
    after: list[int] = []
    outbox = Outbox(
        lambda conn, frames: written.append((conn, frames)), lambda: after.append(1), 20
    )
    for n in range(10):
        for conn in (1, 2, 3, 4):
            outbox.add(conn, f"{conn}:{n}")
    assert outbox.frames == 40 and 2 in outbox and not written
    outbox.flush_conn(3)  # before a close: written at once, alone
    assert written == [(3, [f"3:{n}" for n in range(10)])] and 3 not in outbox
    await asyncio.sleep(0)  # one loop iteration: one chunk (20 frames' worth), not everything
    assert [conn for conn, _ in written] == [3, 1, 2] and after == [1]
    outbox.add(1, "1:late")  # behind what conn 1 had: it was written already
    await outbox.settle(0)  # waits until nothing is held
    assert [conn for conn, _ in written] == [3, 1, 2, 4, 1]
    for conn in (1, 2, 4):
        frames = [f for c, batch in written if c == conn for f in batch]
        assert frames == [f"{conn}:{n}" for n in range(10)] + (["1:late"] if conn == 1 else [])
    assert outbox.frames == 0 and not outbox.pending
