"""`serve --redis` refused clearly, and no Redis client on import."""

from __future__ import annotations

import subprocess
import sys

from .conftest import SECRET, _free_port


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
