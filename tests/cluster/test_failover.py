"""A session given every node's URL (``Session([n1, n2, n3])``) outlives its node's ``kill -9``.

Real redis-server and node processes (conftest.py); the session dials the
next live node and resumes there, with the same participant id.
"""

from __future__ import annotations

import asyncio

import pytest

from roomsignal import Session
from roomsignal.testing import CutProxy

from .conftest import Node, Recorder, RedisServer, home_of, room_hash, session, wait_until

pytestmark = pytest.mark.timeout(90)


async def test_a_session_given_every_node_resumes_through_the_next_live_one(
    nodes: list[Node], redis: RedisServer, sessions: list[Session]
) -> None:
    urls = [node.url for node in nodes]
    mover = session(sessions, urls, "failover", "mover")  # type: ignore[arg-type]
    witness = session(sessions, nodes[1].url, "failover", "witness")
    reconnected, inbox = Recorder(), Recorder()
    mover.on_reconnected(reconnected)
    witness.on_message(lambda m: inbox(m.text))
    await mover.connect()
    assert mover.url == nodes[0].url  # the first that answers
    await witness.connect()
    mover_id = mover.participant_id

    async def seated() -> bool:
        seats = await room_hash(redis, "failover")
        return f"m:{mover_id}" in seats and f"m:{witness.participant_id}" in seats

    await wait_until(seated)  # journaled: a takeover finds both seats
    nodes[0].kill()  # the mover's node (and maybe the room's home)
    (event,) = await reconnected.wait_for(1, timeout=30)
    assert event.resumed and not event.state_reset
    assert event.url in urls[1:] and mover.url == event.url
    assert mover.participant_id == mover_id
    await mover.send_message("after the failover")
    assert await inbox.wait_for(1, timeout=10) == ["after the failover"]


async def test_a_request_whose_answer_died_with_the_home_is_not_handled_twice(
    nodes: list[Node], redis: RedisServer, sessions: list[Session]
) -> None:
    """The home handled a chat message and journaled it, then died before its answer
    reached the sender: the sender sends it again (same id) after resuming, and the
    room's new home answers it from the journaled answers: one delivery."""
    urls = [node.url for node in nodes]
    witness = session(sessions, urls, "answers", "witness")  # type: ignore[arg-type]
    inbox = Recorder()
    witness.on_message(lambda m: inbox(m.text))
    await witness.connect()  # first: the room's home is nodes[0]
    assert await home_of(redis, "answers") == nodes[0].node_id
    async with CutProxy(nodes[1].port) as proxy:  # the sender sits on an edge, nodes[1]
        sender = session(sessions, proxy.url, "answers", "sender")
        reconnected = Recorder()
        sender.on_reconnected(reconnected)
        await sender.connect()
        sender_id = sender.participant_id
        proxy.pause_downstream()  # its answer will not reach the sender
        sending = asyncio.ensure_future(sender.send_message("once"))
        assert await inbox.wait_for(1) == ["once"]  # the home handled it

        async def journaled() -> bool:
            return f"a:{sender_id}" in await room_hash(redis, "answers")

        await wait_until(journaled)
        nodes[0].kill()  # the home dies with the answer still held
        proxy.cut()
        proxy.resume()
        await asyncio.wait_for(sending, 30)  # the awaited call simply completes
        (event,) = await reconnected.wait_for(1, timeout=30)
        assert event.resumed and event.resent == 1
        await sender.send_message("after")
        assert await inbox.wait_for(2, timeout=20) == ["once", "after"]


def test_the_journaled_answers_are_bounded_in_count_and_bytes() -> None:
    """``a:PID`` holds the newest answers only: 64 of them, 64 KiB at most."""
    import json

    from roomsignal.server._journal import ANSWERS_KEPT, ANSWERS_KEPT_BYTES, _answers
    from roomsignal.server._state import Member

    member = Member.__new__(Member)
    member.answered = {n: "" for n in range(1000)}
    kept = json.loads(_answers(member))
    assert [request_id for request_id, _ in kept] == list(range(1000 - ANSWERS_KEPT, 1000))
    member.answered = {f"{n}-" + "x" * 10_000: "" for n in range(20)}
    kept = json.loads(_answers(member))
    assert 0 < len(kept) < 20 and len(json.dumps(kept)) <= ANSWERS_KEPT_BYTES
    assert kept[-1][0].startswith("19-")  # the newest
