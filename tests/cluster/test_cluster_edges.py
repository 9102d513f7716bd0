"""`serve --redis` refused clearly, no Redis client on import, a node that always closes."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from .conftest import SECRET, RedisServer, _free_port


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
