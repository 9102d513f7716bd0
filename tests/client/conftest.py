"""Fixtures for client tests: the real reference server on loopback, a cuttable proxy.

The proxy is ``roomsignal.testing.CutProxy``, the one users get from the plugin.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from roomsignal import Session
from roomsignal.server import SignalingServer
from roomsignal.testing import FAST_RECONNECT
from roomsignal.testing import CutProxy as Proxy
from roomsignal.tokens import mint

SECRET = "client-test-secret-0123456789abcdef"
FAST = FAST_RECONNECT


def token(session_id: str = "room", **claims: Any) -> str:
    """A valid token for ``session_id`` (see ``roomsignal.tokens.mint``)."""
    return mint(SECRET, session_id, **claims)


@pytest.fixture
async def server() -> AsyncIterator[SignalingServer]:
    async with SignalingServer(
        secret=SECRET,
        allow_simulation=True,
        sdp_timeout=0.5,
        resume_window=5.0,
        max_streaming_participants=4,
        replay_buffer=4096,
    ) as srv:
        yield srv


@pytest.fixture
async def proxy(server: SignalingServer) -> AsyncIterator[Proxy]:
    async with Proxy(server.port) as p:
        yield p


SessionFactory = Callable[..., Session]


@pytest.fixture
async def make_session(server: SignalingServer) -> AsyncIterator[SessionFactory]:
    """Sessions with test-friendly defaults, all closed at teardown."""
    made: list[Session] = []

    def factory(
        name: str = "bot", *, room: str = "room", url: str | None = None, **kwargs: Any
    ) -> Session:
        kwargs.setdefault("token", token(room))
        kwargs.setdefault("reconnect", FAST)
        kwargs.setdefault("request_timeout", 5.0)
        kwargs.setdefault("close_timeout", 1.0)
        kwargs.setdefault("strict_listeners", True)
        session = Session(url or server.url, name=name, **kwargs)
        made.append(session)
        return session

    yield factory
    for session in made:
        with contextlib.suppress(Exception):
            await session.close()


class Recorder:
    """A listener that records payloads and lets a test await the n-th one."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def __call__(self, item: Any) -> None:
        self.items.append(item)
        for n, future in self._waiters:
            if len(self.items) >= n and not future.done():
                future.set_result(None)

    async def wait_for(self, n: int = 1, timeout: float = 5.0) -> list[Any]:
        """Wait until at least ``n`` items arrived; returns them all."""
        if len(self.items) < n:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append((n, future))
            async with asyncio.timeout(timeout):
                await future
        return self.items


def free_port() -> int:
    """A loopback port free right now (for a server that must restart on the same port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# What a scripted server (not the reference one) answers a join with.
JOIN_RESULT = {
    "sessionId": "room",
    "participantId": "p1",
    "participantSecret": "secret",
    "participantType": "full",
    "roles": [],
    "participants": [],
    "seq": 0,
    "resumed": False,
}
