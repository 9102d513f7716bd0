"""Fixtures for the server tests: live servers on port 0 and a raw JSON-RPC peer.

``Peer`` is written from PROTOCOL.md alone (plain JSON over
``websockets.asyncio.client``), so these tests check the wire, not our client.
Nothing sleeps: every wait is for a frame or a close, bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

SECRET = "server-test-secret-0123456789abcdef-0123"
_IDS = itertools.count(1)
WAIT = 5.0


def token(session_id: str = "room", **claims: Any) -> str:
    """A token for ``session_id`` signed with the test secret."""
    return mint(SECRET, session_id, **claims)


class Peer:
    """One raw connection: send requests, read responses and notifications."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.notes: deque[dict[str, Any]] = deque()
        self.responses: dict[Any, dict[str, Any]] = {}
        self.others: deque[dict[str, Any]] = deque()
        self._ids = _IDS  # unique across peers: a resumed seat must not reuse an id (section 8)
        self.participant_id: str | None = None
        self.secret: str | None = None

    async def _read(self) -> None:
        raw = await self.ws.recv()
        assert isinstance(raw, str), "the server sends text frames only"
        frame = json.loads(raw)
        assert frame["jsonrpc"] == "2.0"
        if "method" in frame:
            assert "id" not in frame
            self.notes.append(frame)
        elif frame.get("id") is not None:
            self.responses[frame["id"]] = frame
        else:
            self.others.append(frame)

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def response(self, request_id: Any) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            while request_id not in self.responses:
                await self._read()
        return self.responses.pop(request_id)

    async def null_id_error(self) -> dict[str, Any]:
        """The next response with ``id: null`` (answers to unreadable frames)."""
        async with asyncio.timeout(WAIT):
            while not self.others:
                await self._read()
        return self.others.popleft()

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id = next(self._ids)
        frame: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            frame["params"] = params
        await self.ws.send(json.dumps(frame))
        return await self.response(request_id)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """The result of a request that must succeed."""
        answer = await self.request(method, params)
        assert "result" in answer, answer
        result: dict[str, Any] = answer["result"]
        return result

    async def fail(self, method: str, **params: Any) -> dict[str, Any]:
        """The error object of a request that must fail."""
        answer = await self.request(method, params)
        assert "error" in answer, answer
        error: dict[str, Any] = answer["error"]
        return error

    async def join(
        self, session_id: str = "room", name: str = "alice", **kw: Any
    ) -> dict[str, Any]:
        participant_type = kw.pop("participant_type", "full")
        params: dict[str, Any] = {
            "token": token(session_id, **kw),
            "name": name,
            "participantType": participant_type,
        }
        result = await self.call("join", **params)
        self.participant_id = result["participantId"]
        self.secret = result["participantSecret"]
        return result

    async def note(self, method: str | None = None) -> dict[str, Any]:
        """The params of the next notification (checked against ``method``)."""
        async with asyncio.timeout(WAIT):
            while not self.notes:
                await self._read()
        frame = self.notes.popleft()
        if method is not None:
            assert frame["method"] == method, frame
        params: dict[str, Any] = frame["params"]
        return params

    async def closed(self) -> int | None:
        """Wait for the connection to close; the close code received (None: no frame)."""
        async with asyncio.timeout(WAIT):
            try:
                while True:
                    await self._read()
            except ConnectionClosed:
                pass
        rcvd = self.ws.protocol.close_rcvd
        return None if rcvd is None else rcvd.code

    async def drop(self) -> None:
        """Ask the server to abort this connection (``connectionDrop``); wait for it."""
        request_id = next(self._ids)
        await self.send_raw(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": request_id,
                    "method": "simulateScenario",
                    "params": {"scenario": "connectionDrop"},
                }
            )
        )
        assert await self.closed() is None, "no close frame on a drop"
        assert request_id not in self.responses, "no response to connectionDrop"

    async def quiet(self) -> None:
        """Prove nothing more is queued for us: a ping answers before any notification."""
        await self.call("ping")
        assert not self.notes, list(self.notes)


async def until(predicate: Callable[[], bool], peer: Peer) -> None:
    """Wait until ``predicate`` holds, round-tripping pings on ``peer`` (no sleeps)."""
    async with asyncio.timeout(WAIT):
        while not predicate():
            await peer.call("ping")


ServerFactory = Callable[..., Awaitable[SignalingServer]]
PeerFactory = Callable[..., Awaitable[Peer]]


@pytest.fixture
async def make_server() -> AsyncIterator[ServerFactory]:
    servers: list[SignalingServer] = []

    async def start(**options: Any) -> SignalingServer:
        options.setdefault("secret", SECRET)
        options.setdefault("sdp_timeout", 0.5)
        options.setdefault("resume_window", 30.0)
        options.setdefault("allow_simulation", True)
        options.setdefault("close_timeout", 1.0)
        server = SignalingServer(**options)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def server(make_server: ServerFactory) -> SignalingServer:
    return await make_server()


@pytest.fixture
async def make_peer() -> AsyncIterator[Callable[[SignalingServer], Awaitable[Peer]]]:
    peers: list[Peer] = []

    async def open_peer(server: SignalingServer, subprotocol: bool = True) -> Peer:
        ws = await connect(
            server.url,
            subprotocols=["roomsignal.v1"] if subprotocol else None,  # type: ignore[list-item]
            compression=None,
            close_timeout=1.0,
            max_size=None,
            max_queue=None,
        )
        peer = Peer(ws)
        peers.append(peer)
        return peer

    yield open_peer
    for peer in peers:
        await peer.ws.close()


@pytest.fixture
async def peer(
    server: SignalingServer, make_peer: Callable[[SignalingServer], Awaitable[Peer]]
) -> Callable[[], Awaitable[Peer]]:
    async def open_peer() -> Peer:
        return await make_peer(server)

    return open_peer
