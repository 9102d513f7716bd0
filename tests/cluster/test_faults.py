"""Faults with real processes: kill -9 of an edge and of a home, a Redis restart, max_sessions."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from roomsignal import ErrorCode, SessionErrorException, SessionStateError
from roomsignal.testing import CutProxy

from .conftest import (
    Node,
    Recorder,
    RedisServer,
    home_of,
    room_hash,
    session,
    start_node,
    wait_health,
    wait_until,
)

pytestmark = pytest.mark.timeout(60)


async def test_max_sessions_is_cluster_wide(redis: RedisServer, sessions: list[Any]) -> None:
    """204: two rooms on two nodes fill max_sessions=2; a third room is refused on any node."""
    started = await asyncio.gather(
        *(start_node(redis, f"m{i}", "--max-sessions", "2") for i in (1, 2))
    )
    try:
        m1, m2 = started
        await session(sessions, m1.url, "r1", "a").connect()
        await session(sessions, m2.url, "r2", "b").connect()
        for node in (m1, m2):
            late = session(sessions, node.url, "r3", "c", reconnect=None)
            with pytest.raises(SessionErrorException) as info:
                await late.connect()
            assert info.value.error.code == ErrorCode.SESSION_CANNOT_BE_CREATED_ERROR_CODE
        # an existing room still takes members, from either node
        await session(sessions, m2.url, "r1", "d").connect()
    finally:
        for s in sessions:
            await s.close()
        await asyncio.gather(*(node.stop() for node in started))


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
async def test_kill_9_of_a_node_that_is_not_the_home(
    nodes: list[Node], redis: RedisServer, sessions: list[Any], how: str
) -> None:
    """The clients of a killed (or stopped) edge reconnect to another node and resume, losing nothing."""
    owner = session(sessions, nodes[0].url, "edge", "owner")
    await owner.connect()
    home = await home_of(redis, "edge")
    edge, other = [node for node in nodes if node.node_id != home][:2]
    async with CutProxy(edge.port) as proxy:
        listener = session(sessions, proxy.url, "edge", "listener")
        inbox, reconnected = Recorder(), Recorder()
        listener.on_message(lambda m: inbox(m.text))
        listener.on_reconnected(reconnected)
        await listener.connect()
        await owner.send_message("before")
        await inbox.wait_for(1)
        proxy.target_port = other.port
        if how == "kill -9":
            edge.kill()
        else:  # a graceful stop closes its relayed clients with 1012: they resume elsewhere
            edge.process.send_signal(signal.SIGTERM)
        for i in range(10):
            await owner.send_message(f"m{i}")
        (event,) = await reconnected.wait_for(1)
        assert event.resumed
        await inbox.wait_for(11)
        assert inbox.items == ["before", *(f"m{i}" for i in range(10))]


async def test_redis_restart(nodes: list[Node], redis: RedisServer, sessions: list[Any]) -> None:
    """Redis down: 503 and no new rooms, the home keeps its room; back: 200, the relayed member resumes."""
    by_id = {node.node_id: node for node in nodes}
    host = session(sessions, nodes[0].url, "kept", "host")
    await host.connect()
    home = by_id[await home_of(redis, "kept")]
    edge = next(node for node in nodes if node is not home)
    if home is not nodes[0]:  # the host is relayed: let it sit on the home itself
        await host.close()
        host = session(sessions, home.url, "kept", "host")
        await host.connect()
    guest = session(sessions, edge.url, "kept", "guest")
    inbox, reconnected = Recorder(), Recorder()
    guest.on_message(lambda m: inbox(m.text))
    guest.on_reconnected(reconnected)
    await guest.connect()
    await host.send_message("before")
    await inbox.wait_for(1)
    assert await edge.health() == 200
    await redis.stop()
    await wait_health(edge, 503)
    await wait_health(home, 503)
    refused = session(sessions, edge.url, "new-room", "a", reconnect=None)
    with pytest.raises(SessionStateError) as info:  # the node closes with 1013: try later
        await refused.connect()
    assert info.value.code == ErrorCode.GENERIC_CONNECTION_ERROR
    await host.send_message("during")  # the home serves its own clients meanwhile
    await redis.start()
    await wait_health(edge, 200)
    await wait_health(home, 200)
    (event,) = await reconnected.wait_for(1, timeout=20)
    assert event.resumed
    await host.send_message("after")
    assert await inbox.wait_for(3) == ["before", "during", "after"]

    async def rewritten() -> bool:  # Redis came back empty: the home wrote its room again
        seats = await room_hash(redis, "kept")
        return {f"m:{host.participant_id}", f"m:{guest.participant_id}"} <= set(seats)

    await wait_until(rewritten)
    a = session(sessions, edge.url, "new-room", "a")
    await a.connect()
