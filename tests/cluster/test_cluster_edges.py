"""`serve --redis` refused clearly, no Redis client on import, a node that always closes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from roomsignal import ErrorCode

from .conftest import SECRET, RedisServer, _free_port, call, home_of, start_node, token


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roomsignal", "serve", "--secret", SECRET, "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_serve_with_an_unreachable_redis_says_so() -> None:
    done = _serve("--redis", f"redis://127.0.0.1:{_free_port()}/0")
    assert done.returncode != 0
    assert "cannot reach Redis" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_with_a_bad_redis_url_says_so() -> None:
    done = _serve("--redis", "http://127.0.0.1:1/0")
    assert done.returncode != 0
    assert "bad --redis URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_importing_roomsignal_never_imports_redis() -> None:
    code = (
        "import sys, roomsignal, roomsignal.server, roomsignal.cli; "
        "import roomsignal.server._cluster, roomsignal.cli._cluster; "
        "assert 'redis' not in sys.modules, sorted(m for m in sys.modules if 'redis' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


async def test_a_lone_server_runs_no_journal() -> None:
    """Without a cluster the rooms are the plain state machine (docs/scaling.md, "Takeover")."""
    from roomsignal.server import SignalingServer
    from roomsignal.server._rooms import Rooms

    async with SignalingServer(secret=SECRET) as server:
        assert type(server.rooms) is Rooms
        assert server.cluster is None


async def test_close_returns_even_when_a_task_loses_a_cancellation(redis: RedisServer) -> None:
    """A node must exit on SIGTERM even if one cancellation gets lost (as in a redis-py call).

    Seen in benchmarks/cluster.py: a node whose writer task swallowed the
    cancellation never exited; close() now wakes its tasks and cancels again.
    """
    from roomsignal.server import SignalingServer
    from roomsignal.server._cluster import Cluster

    cluster = Cluster(SignalingServer(secret=SECRET, port=0), redis.url, node_id="n1", lease=1.5)
    await cluster.start()
    forever, swallowed = asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        try:
            await forever.wait()
        except asyncio.CancelledError:
            swallowed.set()  # lost, and back to waiting
        await forever.wait()

    cluster._spawn(stubborn())
    tasks = list(cluster._tasks)
    await asyncio.wait_for(cluster.close(), 10)
    assert swallowed.is_set()
    assert all(task.done() for task in tasks)


async def test_a_join_refused_by_a_remote_home_still_times_out(redis: RedisServer) -> None:
    """As on a lone server: a connection that has not joined by ``--join-timeout`` is closed.

    A join relayed to another node once counted as joined, so a connection
    whose relayed join was refused could idle on its edge for ever.
    """
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    started = await asyncio.gather(
        *(start_node(redis, node_id, "--join-timeout", "1") for node_id in ("n1", "n2"))
    )
    protocol = ["roomsignal.v1"]
    try:
        async with connect(started[0].url, subprotocols=protocol) as host:  # type: ignore[list-item]
            assert "result" in await call(host, 1, "join", token=token("edge"), name="host")
            home = await home_of(redis, "edge")
            edge = next(node for node in started if node.node_id != home)
            async with (
                connect(edge.url, subprotocols=protocol) as seated,  # type: ignore[list-item]
                connect(edge.url, subprotocols=protocol) as refused,  # type: ignore[list-item]
            ):
                assert "result" in await call(seated, 1, "join", token=token("edge"), name="guest")
                answer = await call(refused, 1, "join", token=token("edge"), name="host")
                assert answer["error"]["code"] == ErrorCode.EXISTING_USER_IN_SESSION_ERROR_CODE
                with pytest.raises(ConnectionClosed):
                    async with asyncio.timeout(10):
                        await refused.recv()
                assert refused.close_code == 1008 and refused.close_reason == "joinTimeout"
                # the seated guest, relayed too, is past its join timeout and still served
                assert "result" in await call(seated, 2, "ping")
    finally:
        await asyncio.gather(*(node.stop() for node in started))


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/abc", "redis://127.0.0.1:1/0?db=x"])
def test_serve_with_a_database_that_is_not_a_number_says_so(url: str) -> None:
    """redis-py would silently use database 0; refused before any connection."""
    done = _serve("--redis", url)
    assert done.returncode != 0
    assert "bad --redis URL" in done.stderr and "database must be a number" in done.stderr
    assert "cannot reach" not in done.stderr and "Traceback" not in done.stderr


async def test_a_normal_start_logs_no_warning(redis: RedisServer, caplog: Any) -> None:
    """Joining the cluster is INFO; WARNING is for a Redis that comes back."""
    import logging

    from roomsignal.server import SignalingServer
    from roomsignal.server._cluster import Cluster

    caplog.set_level(logging.INFO, logger="roomsignal")
    cluster = Cluster(SignalingServer(secret=SECRET, port=0), redis.url, node_id="w1", lease=1.5)
    await cluster.start()
    try:
        assert cluster.healthy
    finally:
        await cluster.close()
    records = [r for r in caplog.records if r.name.startswith("roomsignal")]
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []
    assert any("serving the cluster" in r.getMessage() for r in records)
