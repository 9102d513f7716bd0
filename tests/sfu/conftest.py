"""Fixtures for the media node tests: a real Janus, the reference server driving it, sessions.

One private Janus per module (started from a temp config folder, stopped by
its pid); a server per test. When /usr/bin/janus is missing the tests are
skipped, unless ``CI`` is set: then they fail (.ci/run installs it).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("aiortc", reason="the media extra is not installed")

from roomsignal import ReconnectPolicy, Session
from roomsignal.server import SignalingServer
from roomsignal.server._janus_process import JanusProcess, janus_binary
from roomsignal.tokens import mint

SECRET = "sfu-test-secret-0123456789abcdef"
FAST = ReconnectPolicy(max_attempts=200, initial_delay=0.005, max_delay=0.05)
W, H = 160, 120
WAIT = 10.0

SessionFactory = Callable[..., Awaitable[Session]]

if janus_binary() is None:
    if os.environ.get("CI"):
        pytest.fail("janus is not installed (.ci/run installs it)", pytrace=False)
    pytest.skip("janus is not installed (/usr/bin/janus)", allow_module_level=True)


def token(session_id: str = "room", **claims: Any) -> str:
    return mint(SECRET, session_id, **claims)


@pytest.fixture(scope="module")
def janus_port() -> int:
    from roomsignal.server._janus_process import _free_port

    return _free_port()


@pytest.fixture
async def janus(janus_port: int) -> AsyncIterator[JanusProcess]:
    """A private Janus on 127.0.0.1 (per test: its loop is the test's)."""
    process = JanusProcess(port=janus_port)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


@pytest.fixture
async def server(janus: JanusProcess) -> AsyncIterator[SignalingServer]:
    async with SignalingServer(
        secret=SECRET, allow_simulation=True, sdp_timeout=3.0, media_node=janus.url
    ) as srv:
        assert srv.media_node is not None and srv.media_node.healthy
        yield srv


@pytest.fixture
async def join(server: SignalingServer) -> AsyncIterator[SessionFactory]:
    """``await join("name")``: a joined session on ``server``, closed after the test."""
    opened: list[Session] = []

    async def make(name: str, url: str | None = None, **options: Any) -> Session:
        options.setdefault("reconnect", FAST)
        options.setdefault("close_timeout", 0.5)
        session = Session(url or server.url, token=token(), name=name, **options)
        opened.append(session)
        await session.connect()
        return session

    yield make
    for session in reversed(opened):
        await session.close()
