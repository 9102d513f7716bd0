"""A session given every node's URL (``Session([n1, n2, n3])``) outlives its node's ``kill -9``.

Real redis-server and node processes (conftest.py); the session dials the
next live node and resumes there, with the same participant id.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from cli.conftest import spawn
from roomsignal import ReconnectPolicy, Session
from roomsignal.testing import CutProxy

from .conftest import (
    Node,
    Recorder,
    RedisServer,
    home_of,
    room_hash,
    session,
    token,
    wait_until,
)

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

        async def journaled() -> bool:  # its answer, in the seat's answers (a:PID...)
            fields = await room_hash(redis, "answers")
            return any(name.startswith(f"a:{sender_id}") for name in fields)

        await wait_until(journaled)
        nodes[0].kill()  # the home dies with the answer still held
        proxy.cut()
        proxy.resume()
        await asyncio.wait_for(sending, 30)  # the awaited call simply completes
        (event,) = await reconnected.wait_for(1, timeout=30)
        assert event.resumed and event.resent == 1
        await sender.send_message("after")
        assert await inbox.wait_for(2, timeout=20) == ["once", "after"]


async def test_a_home_s_death_reports_no_real_refusal_and_the_end_still_does(
    nodes: list[Node], redis: RedisServer, sessions: list[Session]
) -> None:
    """``kill -9`` of the client's node: the resume attempts that fail meanwhile (the dead
    node, a live one closing with 1012 while the room moves) are the way back, never
    reported as a real refusal (``recovering == False``); the session's real end is."""
    urls = [node.url for node in nodes]
    mover = session(  # type: ignore[arg-type]
        sessions,
        urls,
        "recovering",
        "mover",
        reconnect=ReconnectPolicy(
            initial_delay=0.05, max_delay=0.3, jitter=False, max_attempts=8, outlast_seat=False
        ),
    )
    witness = session(sessions, nodes[1].url, "recovering", "witness")
    reconnected, errors = Recorder(), Recorder()
    mover.on_reconnected(reconnected)
    mover.on_session_error(errors)
    await mover.connect()  # the room's home and the mover's node: nodes[0]
    await witness.connect()
    mover_id = mover.participant_id

    async def seated() -> bool:
        seats = await room_hash(redis, "recovering")
        return f"m:{mover_id}" in seats and f"m:{witness.participant_id}" in seats

    await wait_until(seated)
    nodes[0].kill()
    (event,) = await reconnected.wait_for(1, timeout=30)
    assert event.resumed and mover.participant_id == mover_id
    real = [e for e in errors.items if not e.recovering]
    assert real == [], [f"{e.code} {e.message}" for e in real]
    # The real end: no node left, the policy gives up: 903, not recovering.
    for node in nodes[1:]:
        node.kill()
    end = await asyncio.wait_for(mover.wait_closed(), 30)
    assert end.error is not None and end.error.code == 903 and not end.error.recovering
    real = [e for e in errors.items if not e.recovering]
    assert [e.code for e in real] == [903], [f"{e.code} {e.message}" for e in real]


async def test_roomsignal_join_marks_the_failover_s_errors_recovering(
    nodes: list[Node], redis: RedisServer
) -> None:
    """The reviewer's repro: ``roomsignal join n1 n2 n3``, then ``kill -9`` of its node:
    each error line it prints meanwhile says it is the way back, not a refusal."""
    urls = [node.url for node in nodes]
    async with spawn("join", *urls, "--token", token("cli-failover"), "--name", "cli") as proc:
        await proc.line(lambda line: "connected" in line and "reconnected" not in line, timeout=20)

        async def seated() -> bool:
            return any(name.startswith("m:") for name in await room_hash(redis, "cli-failover"))

        await wait_until(seated)
        nodes[0].kill()
        await proc.line(lambda line: "reconnected" in line, timeout=30)
        errors = [line for line in proc.stdout if "session_error" in line]
        assert all("recovering" in line for line in errors), errors
        proc.process.send_signal(signal.SIGINT)
        assert await proc.wait() == 0
