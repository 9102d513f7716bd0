"""A home's death seen as a resume (docs/scaling.md, "Takeover"), and its fallbacks.

Each test kills a room's home with ``kill -9`` while its members sit on other
nodes (or behind a proxy that redials elsewhere); the node that takes the
room over loads the seats, seqs and replay streams from Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from roomsignal import ReconnectPolicy, Session
from roomsignal.testing import CutProxy

from .conftest import (
    Node,
    Recorder,
    RedisServer,
    home_of,
    room_hash,
    room_keys,
    send_surely,
    session,
    start_node,
    wait_until,
)

pytestmark = pytest.mark.timeout(90)

# Long enough to outlast a lapsed lease and an expired room on a loaded machine.
PATIENT = ReconnectPolicy(initial_delay=0.05, max_delay=0.3, jitter=False, max_attempts=200)


@contextlib.asynccontextmanager
async def _nodes(redis: RedisServer, tag: str, *extra: str) -> AsyncIterator[list[Node]]:
    started = await asyncio.gather(*(start_node(redis, f"{tag}{i}", *extra) for i in (1, 2, 3)))
    try:
        yield list(started)
    finally:
        await asyncio.gather(*(node.stop() for node in started))


def inbox_of(member: Session) -> Recorder:
    inbox = Recorder()
    member.on_message(lambda m: inbox(m.text))
    return inbox


def reconnects_of(member: Session) -> Recorder:
    reconnected = Recorder()
    member.on_reconnected(reconnected)
    return reconnected


async def _seated(redis: RedisServer, room: str, *members: Session) -> bool:
    seats = await room_hash(redis, room)
    return all(f"m:{m.participant_id}" in seats for m in members)


async def test_kill_9_of_the_home_is_a_resume(
    nodes: list[Node], redis: RedisServer, sessions: list[Any]
) -> None:
    """Chat flows while the home is killed: every member resumes, keeps its id, gets each message once, in order."""
    by_id = {node.node_id: node for node in nodes}
    async with CutProxy(nodes[0].port) as proxy:
        host = session(sessions, proxy.url, "moving", "host")  # places the room
        await host.connect()
        home = await home_of(redis, "moving")
        dead = by_id[home]
        edge1, edge2 = [node for node in nodes if node is not dead]
        if proxy.target_port == dead.port:  # the host sat on the home: it redials an edge
            proxy.target_port = edge1.port
        listener = session(sessions, edge1.url, "moving", "listener")
        talker = session(sessions, edge2.url, "moving", "talker")
        members = [host, listener, talker]
        inboxes = [inbox_of(m) for m in (host, listener)]
        reconnected = [reconnects_of(m) for m in members]
        await listener.connect()
        await talker.connect()
        ids = [m.participant_id for m in members]
        await wait_until(lambda: _seated(redis, "moving", *members))
        loop = asyncio.get_running_loop()
        killed = 0.0
        for i in range(40):
            if i == 10:
                for inbox in inboxes:
                    await inbox.wait_for(10)
                killed = loop.time()
                dead.kill()
            await send_surely(talker, f"m{i}")
        for rec in reconnected:
            (event,) = await rec.wait_for(1, timeout=30)
            assert event.resumed and not event.state_reset
        took = loop.time() - killed
        await send_surely(talker, "end")  # behind every other: a duplicate would come before it
        expected = [f"m{i}" for i in range(40)] + ["end"]
        for inbox in inboxes:
            assert await inbox.wait_for(len(expected), timeout=20) == expected
        assert [m.participant_id for m in members] == ids
        assert await home_of(redis, "moving") != home
        state = await host.get_state()
        assert sorted((p.name, p.participant_id) for p in state.participants) == sorted(
            zip(["host", "listener", "talker"], ids, strict=True)
        )
        assert took < 30  # docs/scaling.md states and measures the bound


async def test_a_resume_older_than_the_stored_replay_gets_a_state_reset(
    redis: RedisServer, sessions: list[Any]
) -> None:
    """A member away for more than the replay bound rejoins afresh; one within it resumes."""
    async with _nodes(redis, "b", "--replay-buffer", "5") as nodes:
        by_id = {node.node_id: node for node in nodes}
        anchor = session(sessions, nodes[0].url, "bound", "anchor", reconnect=None)
        await anchor.connect()
        dead = by_id[await home_of(redis, "bound")]
        edge1, edge2 = [node for node in nodes if node is not dead]
        async with CutProxy(edge1.port) as proxy:
            keeper = session(sessions, edge1.url, "bound", "keeper")
            lagger = session(sessions, proxy.url, "bound", "lagger", reconnect=PATIENT)
            talker = session(sessions, edge2.url, "bound", "talker")
            keeper_inbox, lagger_inbox = inbox_of(keeper), inbox_of(lagger)
            keeper_back, lagger_back = reconnects_of(keeper), reconnects_of(lagger)
            for member in (keeper, lagger, talker):
                await member.connect()
            old_lagger = lagger.participant_id
            await send_surely(talker, "a0")
            await lagger_inbox.wait_for(1)
            proxy.refuse = True
            proxy.cut()
            for i in range(12):
                await send_surely(talker, f"m{i}")
            await keeper_inbox.wait_for(13)

            async def stored() -> bool:
                seats = await room_hash(redis, "bound")
                return int(seats.get(f"q:{old_lagger}", 0)) >= 13

            await wait_until(stored)
            streams = await room_keys(redis, "bound")
            key = f"roomsignal:replay:bound:{old_lagger}"
            assert key in streams and all(ttl > 0 for ttl in streams.values())
            from redis.asyncio import Redis

            client = Redis.from_url(redis.url)
            try:
                assert await client.xlen(key) <= 5  # bounded as the home's own buffer
            finally:
                await client.aclose()
            dead.kill()
            proxy.refuse = False
            (event,) = await keeper_back.wait_for(1, timeout=30)
            assert event.resumed and not event.state_reset
            (event,) = await lagger_back.wait_for(1, timeout=30)
            assert event.state_reset and not event.resumed
            assert lagger.participant_id != old_lagger
            await send_surely(talker, "after")
            expected = ["a0", *(f"m{i}" for i in range(12)), "after"]
            assert await keeper_inbox.wait_for(len(expected), timeout=20) == expected
            assert (await lagger_inbox.wait_for(2, timeout=20))[-1] == "after"


async def test_a_takeover_after_the_room_expired_gets_a_state_reset(
    redis: RedisServer, sessions: list[Any]
) -> None:
    """Nobody comes back before the room's keys expire: the members rejoin afresh, no ghost seat."""
    async with _nodes(redis, "e", "--resume-window", "2") as nodes:
        by_id = {node.node_id: node for node in nodes}
        async with CutProxy(nodes[0].port) as first, CutProxy(nodes[1].port) as second:
            a = session(sessions, first.url, "expiring", "a", reconnect=PATIENT)
            await a.connect()
            dead = by_id[await home_of(redis, "expiring")]
            alive = next(node for node in nodes if node is not dead)
            second.target_port = alive.port
            b = session(sessions, second.url, "expiring", "b", reconnect=PATIENT)
            await b.connect()
            back = [reconnects_of(a), reconnects_of(b)]
            await wait_until(lambda: _seated(redis, "expiring", a, b))
            for proxy in (first, second):
                proxy.refuse = True
                proxy.target_port = alive.port
            dead.kill()

            async def expired() -> bool:
                return not await room_keys(redis, "expiring")

            await wait_until(expired, timeout=20)  # TTL: resume_window + lease
            for proxy in (first, second):
                proxy.refuse = False
            for rec in back:
                (event,) = await rec.wait_for(1, timeout=30)
                assert event.state_reset and not event.resumed
            state = await a.get_state()
            assert sorted(p.name for p in state.participants) == ["a", "b"]
