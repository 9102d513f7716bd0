"""``Cluster.drain`` up close: 503 at once, the lease handed over, a resume; a second signal aborts."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from typing import Any

import pytest

from ops.conftest import body_of, http_get  # the ops tests' plain HTTP GET
from roomsignal.server import SignalingServer
from roomsignal.server._cluster import Cluster
from roomsignal.testing import CutProxy

from .conftest import LEASE, SECRET, Node, Recorder, RedisServer, home_of, session


async def _get(port: int, path: str) -> bytes:
    return body_of(await http_get(port, path))


async def _status(port: int, path: str) -> int:
    return int((await http_get(port, path)).split()[1])


async def test_drain_hands_the_room_over_and_its_members_resume(
    redis: RedisServer, sessions: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    a = Cluster(SignalingServer(secret=SECRET, metrics=True), redis.url, node_id="d-a", lease=LEASE)
    b = Cluster(SignalingServer(secret=SECRET, metrics=True), redis.url, node_id="d-b", lease=LEASE)
    await a.start()
    await b.start()
    try:
        async with CutProxy(a.server.port) as proxy:
            member = session(sessions, proxy.url, "moving", "member")
            other = session(sessions, b.server.url, "moving", "other")
            inbox, reconnected = Recorder(), Recorder()
            member.on_message(lambda m: inbox(m.text))
            member.on_reconnected(reconnected)
            await member.connect()  # places the room on d-a (both idle: the first by name)
            assert await home_of(redis, "moving") == "d-a"
            await other.connect()  # relayed by d-b to d-a
            await other.send_message("before")
            await inbox.wait_for(1)
            assert await _status(a.server.port, "/readyz") == 200

            proxy.target_port = b.server.port  # the load balancer's next pick
            draining = asyncio.ensure_future(a.drain())
            await asyncio.sleep(0)  # the drain has begun: unhealthy at once
            assert a.server.draining
            assert await _status(a.server.port, "/healthz") == 503
            assert await _status(a.server.port, "/readyz") == 503
            assert await draining == {"moving": "d-b"}
            assert await home_of(redis, "moving") == "d-b"
            (event,) = await reconnected.wait_for(1)
            assert event.resumed and not event.state_reset
            assert event.participant_id == member.participant_id
            await other.send_message("after")
            assert await inbox.wait_for(2) == ["before", "after"]
            assert b.server.counts.takeovers == 1
            text = (await _get(b.server.port, "/metrics")).decode()
            assert "roomsignal_cluster_redis_up 1.0" in text
            assert "roomsignal_cluster_takeovers_total 1.0" in text
            assert 'roomsignal_cluster_relayed_total{direction="received",kind="take"} 1.0' in text
            assert 'roomsignal_cluster_relayed_total{direction="sent",kind="frame"}' in text
            assert "roomsignal_cluster_relay_flush_seconds_count" in text
            relay = re.search(r"^roomsignal_cluster_relay_seconds_count (\S+)$", text, re.M)
            assert relay is not None and float(relay[1]) >= 2  # d-a's writes to "other"
            assert "roomsignal_draining 1.0" in (await _get(a.server.port, "/metrics")).decode()
            assert a.server.drained
            caplog.set_level(logging.INFO, logger="roomsignal.server")
            await a.close(graceful=False)  # as serve does after the drain: nothing left to abort
            assert "server closed (drained)" in caplog.messages
    finally:
        await a.close(graceful=False)
        await b.close()


async def test_a_second_sigterm_aborts_the_drain(redis: RedisServer, sessions: list[Any]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "roomsignal", "serve", "--redis", redis.url, "--port", "0", "--no-web"),
        *("--secret", SECRET, "--node-id", "slow", "--lease", str(LEASE), "--log-level", "info"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        async with asyncio.timeout(20):
            line = (await process.stdout.readline()).decode()
        node = Node(process, "slow", line.split()[2])
        async with CutProxy(node.port) as proxy:
            member = session(sessions, proxy.url, "stuck", "member", reconnect=None)
            await member.connect()
            proxy.pause()  # its closing handshake cannot finish: the drain waits for it
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                while b"draining: handing rooms over" not in await process.stderr.readline():
                    pass
            # The drain now waits (up to 5 s) for the paused client's closing handshake.
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                rest = await process.stderr.read()
                assert await process.wait() == 0
            assert b"second signal: aborting every connection" in rest
            assert b"drained in" not in rest  # cut short, not waited out
            assert b"server closed (aborted)" in rest
            assert b"Traceback" not in rest
            proxy.resume()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_lone_node_restarted_resumes_its_members(
    redis: RedisServer, sessions: list[Any]
) -> None:
    """No other node to hand the rooms to: the journal stays in Redis; the restarted node resumes."""
    from .conftest import start_node

    first = await start_node(redis, "alone")
    started = [first]
    try:
        async with CutProxy(first.port) as proxy:
            member = session(sessions, proxy.url, "kept", "member")
            inbox, reconnected = Recorder(), Recorder()
            member.on_message(lambda m: inbox(m.text))
            member.on_reconnected(reconnected)
            await member.connect()
            await first.stop()  # SIGTERM: drains, with nowhere to go
            second = await start_node(redis, "alone")
            started.append(second)
            proxy.target_port = second.port
            (event,) = await reconnected.wait_for(1, timeout=20)
            assert event.resumed and not event.state_reset
            talker = session(sessions, second.url, "kept", "talker")
            await talker.connect()
            await talker.send_message("still here")
            assert await inbox.wait_for(1) == ["still here"]
    finally:
        await asyncio.gather(*(node.stop() for node in started))
