"""Fixtures for client tests: the real reference server on loopback, a cuttable proxy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from roomsignal import ReconnectPolicy, Session
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

SECRET = "client-test-secret-0123456789abcdef"
FAST = ReconnectPolicy(max_attempts=200, initial_delay=0.005, max_delay=0.05)


def token(session_id: str = "room", **claims: Any) -> str:
    """A valid token for ``session_id`` (see ``roomsignal.tokens.mint``)."""
    return mint(SECRET, session_id, **claims)


class Proxy:
    """A TCP proxy on loopback that a test can cut (abort every socket) or pause.

    ``cut()`` drops the connections for real, with no close frame; ``refuse``
    makes new connections fail at once; ``pause()`` stops forwarding bytes
    (a peer that went silent) until ``resume()``.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.refuse = False
        self.cut_after: int | None = None  # bytes from the server, then cut()
        self.forwarded = 0
        self.port = 0
        self.connections = 0
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._down_flowing = asyncio.Event()  # server to client only
        self._down_flowing.set()
        self._hold_from_chunk = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def cut(self) -> None:
        """Abort every proxied connection, both sides, with no close handshake."""
        for client, upstream in list(self._links):
            client.transport.abort()
            upstream.transport.abort()
        self._links.clear()

    def pause(self) -> None:
        self._flowing.clear()

    def pause_downstream_after_handshake(self) -> None:
        """From the next connection's first frame on, hold what the server sends.

        The client's second chunk (its first frame, after the HTTP upgrade)
        still reaches the server, as does everything it sends later.
        """
        self._hold_from_chunk = 2

    def resume(self) -> None:
        self._flowing.set()
        self._down_flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        link = (writer, up_writer)
        self._links.add(link)
        for src, dst, downstream in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.get_running_loop().create_task(self._pump(src, dst, downstream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, downstream: bool
    ) -> None:
        chunks = 0
        with contextlib.suppress(OSError, ConnectionError):
            while data := await src.read(65536):
                chunks += 1
                if not downstream and chunks == self._hold_from_chunk:
                    self._hold_from_chunk = 0
                    self._down_flowing.clear()
                await self._flowing.wait()
                if downstream:
                    await self._down_flowing.wait()
                if downstream and self.cut_after is not None:
                    room = self.cut_after - self.forwarded
                    if len(data) >= room:
                        # forward up to the limit (maybe mid-frame), then cut for real
                        dst.write(data[:room])
                        self.forwarded += room
                        self.cut_after = None
                        self.cut()
                        return
                if downstream:
                    self.forwarded += len(data)
                dst.write(data)
                await dst.drain()
        dst.transport.abort()


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
