"""Fixtures for the media tests: the reference server on loopback, sessions, leak probes.

Real aiortc peers on this machine's own addresses, with no ICE servers;
small frames (160x120) so that the suite stays fast on two cores.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("aiortc", reason="the media extra is not installed")

from aiortc import RTCPeerConnection

from roomsignal import ReconnectPolicy, Session
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

SECRET = "media-test-secret-0123456789abcdef"
FAST = ReconnectPolicy(max_attempts=200, initial_delay=0.005, max_delay=0.05)
W, H = 160, 120
WAIT = 10.0  # bound of one wait for media (it takes about 0.1 s here)

SessionFactory = Callable[..., Awaitable[Session]]


def token(session_id: str = "room", **claims: Any) -> str:
    return mint(SECRET, session_id, **claims)


@pytest.fixture
async def server() -> AsyncIterator[SignalingServer]:
    async with SignalingServer(secret=SECRET, allow_simulation=True, sdp_timeout=3.0) as srv:
        yield srv


@pytest.fixture
async def impatient() -> AsyncIterator[SignalingServer]:
    """A server whose exchanges time out (303) after 0.4 s."""
    async with SignalingServer(secret=SECRET, sdp_timeout=0.4) as srv:
        yield srv


async def open_session(opened: list[Session], url: str, name: str, **options: Any) -> Session:
    """A joined session (fast reconnects, a short close; room ``room``), added to ``opened``.

    Shared with tests/sfu. Close them with ``close_sessions(opened)``.
    """
    options.setdefault("reconnect", FAST)
    options.setdefault("close_timeout", 0.5)
    options.setdefault("token", token())
    session = Session(url, name=name, **options)
    opened.append(session)
    await session.connect()
    return session


async def close_sessions(opened: list[Session]) -> None:
    """Close the sessions ``open_session`` opened, newest first."""
    for session in reversed(opened):
        await session.close()


@pytest.fixture
async def join(server: SignalingServer) -> AsyncIterator[SessionFactory]:
    """``await join("name")``: a joined session on ``server``, closed after the test."""
    opened: list[Session] = []

    async def make(name: str, url: str | None = None, **options: Any) -> Session:
        return await open_session(opened, url or server.url, name, **options)

    yield make
    await close_sessions(opened)


def udp_sockets() -> int:
    """UDP sockets this process holds (its socket fds found in /proc/net/udp and udp6)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as rows:
            next(rows)
            count += sum(1 for row in rows if row.split()[9] in inodes)
    return count


def open_peer_connections() -> list[RTCPeerConnection]:
    """Every RTCPeerConnection still alive and not closed."""
    gc.collect()
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, RTCPeerConnection) and o.connectionState != "closed"
    ]
