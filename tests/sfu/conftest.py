"""Fixtures for the media node tests: a real Janus, the reference server driving it, sessions.

One private Janus per module (started from a temp config folder, stopped by
its pid); a server per test. When /usr/bin/janus is missing the tests are
skipped, unless ``CI`` is set: then they fail (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

pytest.importorskip("aiortc", reason="the media extra is not installed")

from media.conftest import (  # the media tests' helpers (not their fixtures)
    SECRET,
    WAIT,
    H,
    SessionFactory,
    W,
    close_sessions,
    open_session,
    token,
)
from roomsignal import Session
from roomsignal.server import SignalingServer
from roomsignal.server._janus_process import JanusProcess, janus_binary

__all__ = ["SECRET", "WAIT", "H", "SessionFactory", "W", "token"]

if janus_binary() is None:
    if os.environ.get("CI"):
        pytest.fail("janus is not installed (.ci/run installs it)", pytrace=False)
    pytest.skip("janus is not installed (/usr/bin/janus)", allow_module_level=True)


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
        return await open_session(opened, url or server.url, name, **options)

    yield make
    await close_sessions(opened)


class Heard:
    """What one session heard, by kind (errors, offers, ends, publishes), awaitable."""

    def __init__(self, session: Session) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()
        for kind in (
            "session_error",
            "sdp_offer",
            "sdp_answer",
            "ice_candidate",
            "subscription_ended",
            "stream_published",
            "stream_unpublished",
            "subscribe_request",
        ):
            getattr(session, f"on_{kind}")(self._adder(kind))

    def _adder(self, kind: str) -> Callable[[Any], None]:
        def add(event: Any) -> None:
            self.events.append((kind, event))
            self._changed.set()

        return add

    def of(self, kind: str) -> list[Any]:
        return [e for k, e in self.events if k == kind]

    async def wait(
        self, kind: str, match: Callable[[Any], bool] = lambda e: True, timeout: float = WAIT
    ) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.of(kind):
                    if match(event):
                        return event
                self._changed.clear()
                await self._changed.wait()


def own_addresses() -> set[str]:
    """This machine's own IP addresses (every interface)."""
    import ifaddr

    return {
        str(ip.ip if isinstance(ip.ip, str) else ip.ip[0])
        for adapter in ifaddr.get_adapters()
        for ip in adapter.ips
    }


def candidate_addresses(sdp: str) -> set[str]:
    """The addresses of the ``a=candidate`` lines of an SDP."""
    return {line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")}


ServerFactory = Callable[..., Awaitable[SignalingServer]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    """``await make_server(media_node=url, **options)``: a server closed after the test."""
    started: list[SignalingServer] = []

    async def make(**options: Any) -> SignalingServer:
        options.setdefault("secret", SECRET)
        options.setdefault("allow_simulation", True)
        server = SignalingServer(**options)
        started.append(server)
        await server.start()
        return server

    yield make
    for server in reversed(started):
        await server.close()


@pytest.fixture
async def dial() -> AsyncIterator[SessionFactory]:
    """``await dial(server, "name")``: a joined session on any server, closed after the test."""
    opened: list[Session] = []

    async def make(server: SignalingServer, name: str, **options: Any) -> Session:
        return await open_session(opened, server.url, name, **options)

    yield make
    await close_sessions(opened)


async def healthz(server: SignalingServer) -> tuple[int, str]:
    """``GET /healthz`` over plain HTTP: the status and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


async def janus_rooms(url: str) -> list[int]:
    """The VideoRoom rooms Janus holds, asked over a connection of the test's own."""
    import json

    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    async with connect(url, subprotocols=[Subprotocol("janus-protocol")]) as ws:

        async def call(message: dict[str, Any]) -> dict[str, Any]:
            await ws.send(json.dumps(dict(message, transaction="t")))
            while True:
                answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
                if answer.get("janus") != "ack":
                    return answer

        session = (await call({"janus": "create"}))["data"]["id"]
        handle = (
            await call(
                {"janus": "attach", "session_id": session, "plugin": "janus.plugin.videoroom"}
            )
        )["data"]["id"]
        answer = await call(
            {
                "janus": "message",
                "session_id": session,
                "handle_id": handle,
                "body": {"request": "list"},
            }
        )
        await call({"janus": "destroy", "session_id": session})
        return [room["room"] for room in answer["plugindata"]["data"]["list"]]


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(server: SignalingServer) -> Samples:
    """``GET /metrics`` over plain HTTP, parsed: ``{(sample name, sorted labels): value}``."""
    from prometheus_client.parser import text_string_to_metric_families

    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    assert head.split()[1] == "200", head
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def media_node_errors(code: int, reason: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The key in ``scrape``'s samples of ``roomsignal_media_node_errors`` for code, reason."""
    from roomsignal import ErrorCode

    labels = (("code", str(code)), ("name", ErrorCode(code).name), ("reason", reason))
    return "roomsignal_media_node_errors_total", labels
