"""The pytest plugin (entry point ``pytest11``): fixtures for testing roomsignal bots.

Every fixture is function-scoped and runs in the test's own event loop, so it
works with pytest-asyncio in ``auto`` or ``strict`` mode.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest
import pytest_asyncio

from roomsignal.client import Session, UrlSource
from roomsignal.server import SignalingServer
from roomsignal.testing import FAST_RECONNECT
from roomsignal.testing._proxy import CutProxy
from roomsignal.tokens import mint

__all__ = [
    "SessionFactory",
    "TokenFactory",
    "cut_proxy",
    "roomsignal_secret",
    "roomsignal_server",
    "roomsignal_session",
    "roomsignal_token",
]

MARKER = "roomsignal_server"


class TokenFactory(Protocol):
    """``roomsignal_token(room="room", **claims)``: a token for ``room`` (see ``mint``)."""

    def __call__(self, room: str = "room", **claims: Any) -> str: ...


class SessionFactory(Protocol):
    """``roomsignal_session(name, room="room", url=None, **session_options)``: a new Session.

    ``url`` defaults to the test's server; it may be a list of URLs or an
    async provider of them, as ``Session``'s (failover: a ``CutProxy`` and
    the server, say). The session is not connected yet: ``async with`` it,
    or ``await connect()``.
    """

    def __call__(
        self, name: str = "bot", *, room: str = "room", url: UrlSource | None = None, **kwargs: Any
    ) -> Session: ...


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``roomsignal_server`` marker."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): options for the roomsignal_server fixture "
        "(any SignalingServer keyword, e.g. sdp_timeout=0.5, max_streaming_participants=2)",
    )


@pytest.fixture
def roomsignal_secret() -> str:
    """The secret the test's server signs and checks tokens with (fresh per test)."""
    return f"roomsignal-testing-{secrets.token_hex(16)}"


@pytest_asyncio.fixture
async def roomsignal_server(
    request: pytest.FixtureRequest, roomsignal_secret: str
) -> AsyncIterator[SignalingServer]:
    """The reference server on 127.0.0.1, port 0, simulation allowed; closed after the test.

    ``@pytest.mark.roomsignal_server(sdp_timeout=0.5)`` passes options to it.
    """
    options: dict[str, Any] = {"allow_simulation": True}
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes keyword options only")
        options.update(marker.kwargs)
    async with SignalingServer(secret=roomsignal_secret, **options) as server:
        yield server


@pytest.fixture
def roomsignal_token(roomsignal_secret: str) -> TokenFactory:
    """A callable that mints a token for a room on the test's server."""

    def make(room: str = "room", **claims: Any) -> str:
        return mint(roomsignal_secret, room, **claims)

    return make


@pytest_asyncio.fixture
async def roomsignal_session(
    roomsignal_server: SignalingServer, roomsignal_token: TokenFactory
) -> AsyncIterator[SessionFactory]:
    """A factory of sessions on the test's server, every one closed at teardown.

    ``url`` (the test's server by default) may be a list of URLs or an
    async provider of them. Defaults (each overridable by keyword): a token
    for ``room``, fast reconnection that gives up after about 5 s without
    waiting out the seat ([`FAST_RECONNECT`][roomsignal.testing.FAST_RECONNECT];
    ``reconnect=ReconnectPolicy(...)`` gives a test its own), 5 s request
    timeout, 1 s close timeout, and ``strict_listeners``: a listener that
    raised fails the test at teardown with that exception.
    """
    made: list[Session] = []

    def factory(
        name: str = "bot", *, room: str = "room", url: UrlSource | None = None, **kwargs: Any
    ) -> Session:
        kwargs.setdefault("token", roomsignal_token(room))
        kwargs.setdefault("reconnect", FAST_RECONNECT)
        kwargs.setdefault("request_timeout", 5.0)
        kwargs.setdefault("close_timeout", 1.0)
        kwargs.setdefault("strict_listeners", True)
        # (an empty list is Session's ValueError, not the default server)
        session = Session(url if url is not None else roomsignal_server.url, name=name, **kwargs)
        made.append(session)
        return session

    yield factory
    failures: list[tuple[str, BaseException]] = []
    for session in made:
        try:
            await session.close()
        except Exception as exc:  # strict listeners: the first listener exception
            failures.append((session.name, exc))
    if failures:
        name, first = failures[0]
        raise AssertionError(
            f"a listener of session {name!r} raised {type(first).__name__}: {first}"
        ) from first


@pytest_asyncio.fixture
async def cut_proxy(roomsignal_server: SignalingServer) -> AsyncIterator[CutProxy]:
    """A [`CutProxy`][roomsignal.testing.CutProxy] in front of ``roomsignal_server``."""
    async with CutProxy(roomsignal_server.port) as proxy:
        yield proxy
