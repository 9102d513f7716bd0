"""Bad input from a server never kills the client: it becomes protocol error events.

The reference server never sends bad frames, so these tests script a peer with
plain websockets on loopback that answers ``join`` and then misbehaves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

import pytest
from websockets.asyncio.server import ServerConnection, serve

from roomsignal import ErrorCode, ProtocolError, SessionState

from .conftest import JOIN_RESULT, Recorder, SessionFactory, token


def _note(method: str, params: dict[str, object]) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params})


async def _scripted(frames: Sequence[str | bytes]) -> AsyncIterator[str]:
    async def handler(ws: ServerConnection) -> None:
        join = json.loads(await ws.recv())
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": join["id"], "result": JOIN_RESULT}))
        for frame in frames:
            await ws.send(frame, text=True if type(frame) is TextBytes else None)
        async for raw in ws:  # answer pings so the client can check it is alive
            request = json.loads(raw)
            if request["method"] == "ping":
                reply = {"jsonrpc": "2.0", "id": request["id"], "result": {"serverTime": 1.0}}
            else:
                reply = {"jsonrpc": "2.0", "id": request["id"], "result": {}}
            await ws.send(json.dumps(reply))

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


class TextBytes(bytes):
    """Sent as a text frame as they are, UTF-8 or not."""


NOT_UTF8 = _note("sessionError", {"seq": 1, "code": 206, "message": "@", "data": {}})

BAD_FRAMES: list[tuple[str | bytes, int]] = [
    ("not json at all", -32700),
    ("[1, 2]", -32600),
    ("{}", -32600),
    (_note("brandNewNotification", {"seq": 1}), -32601),
    (_note("participantLeft", {"seq": 1, "participantId": 5}), -32602),
    (b"\x00\x01binary", -32700),  # binary frames are read as JSON too: not JSON here
    (json.dumps({"jsonrpc": "2.0", "id": 999, "method": "ping"}).encode(), -32600),
    (json.dumps({"jsonrpc": "2.0", "id": 999, "method": "ping"}), -32600),
    # A text frame that is not UTF-8, though a sessionError otherwise: refused, not read.
    (TextBytes(NOT_UTF8.encode().replace(b"@", b"\xff")), -32700),
    (TextBytes(NOT_UTF8.encode().replace(b"@", b"\xed\xa0\x80")), -32700),  # a surrogate
]


@pytest.fixture
async def scripted_url() -> AsyncIterator[str]:
    frames = [frame for frame, _ in BAD_FRAMES]
    frames.append(_note("sessionError", {"seq": 1, "code": 206, "message": "full", "data": {}}))
    async for url in _scripted(frames):
        yield url


async def test_bad_frames_become_protocol_errors(
    scripted_url: str, make_session: SessionFactory
) -> None:
    session = make_session(url=scripted_url, token=token("room"))
    errors = Recorder()
    session.on_session_error(errors)
    await session.connect()
    got = await errors.wait_for(len(BAD_FRAMES) + 1)
    assert [e.code for e in got] == [code for _, code in BAD_FRAMES] + [206]
    for error in got[:-1]:
        assert error.category == "protocol"
        assert error.source == "client"
        assert error.data["name"] == error.name
    assert got[-1].source == "server"
    assert session.state is SessionState.JOINED
    assert await session.ping() == 1.0  # the loop is still alive


async def test_fragmented_messages_keep_their_order(make_session: SessionFactory) -> None:
    """Whole frames take a fast path; a fragmented message must not be overtaken."""

    def error(seq: int) -> str:
        return _note("sessionError", {"seq": seq, "code": 201, "message": f"e{seq}", "data": {}})

    async def handler(ws: ServerConnection) -> None:
        join = json.loads(await ws.recv())
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": join["id"], "result": JOIN_RESULT}))
        await ws.send(error(1))
        frame = error(2)
        await ws.send([frame[:10], frame[10:30], frame[30:]])  # one message, three frames
        for seq in range(3, 50):
            await ws.send(error(seq))
        async for raw in ws:  # answer leave, so close() needs no timeout
            reply = {"jsonrpc": "2.0", "id": json.loads(raw)["id"], "result": {}}
            await ws.send(json.dumps(reply))

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        session = make_session(url=f"ws://127.0.0.1:{port}", reconnect=None)
        errors = Recorder()
        session.on_session_error(errors)
        await session.connect()
        got = await errors.wait_for(49)
        assert [e.message for e in got] == [f"e{seq}" for seq in range(1, 50)]
        await session.close()


async def _script(handler: object) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0) as server:  # type: ignore[arg-type]
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_malformed_results_are_protocol_errors(make_session: SessionFactory) -> None:
    async def handler(ws: ServerConnection) -> None:
        join = json.loads(await ws.recv())
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": join["id"], "result": JOIN_RESULT}))
        async for raw in ws:
            request = json.loads(raw)
            result = {"serverTime": "not a number", "streamId": 5}
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}))

    async for url in _script(handler):
        session = make_session(url=url, reconnect=None)
        errors = Recorder()
        session.on_session_error(errors)
        await session.connect()
        for call in (session.ping(), session.publish()):
            with pytest.raises(ProtocolError) as info:
                await call
            assert info.value.error.code == -32600
            assert info.value.error.data["errors"][0]["loc"][0] == "result"
        assert [(e.code, e.method) for e in await errors.wait_for(2)] == [
            (-32600, "ping"),
            (-32600, "publish"),
        ]
        assert session.state is SessionState.JOINED


async def test_a_plain_close_by_the_server_is_reported(make_session: SessionFactory) -> None:
    async def handler(ws: ServerConnection) -> None:
        join = json.loads(await ws.recv())
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": join["id"], "result": JOIN_RESULT}))
        await ws.close(1000, "bye")

    async for url in _script(handler):
        session = make_session(url=url)
        errors, disconnected = Recorder(), Recorder()
        session.on_session_error(errors)
        session.on_disconnected(disconnected)
        await session.connect()
        (error,) = await errors.wait_for(1)
        assert error.code == ErrorCode.CONNECTION_LOST_ERROR_CODE
        (event,) = await disconnected.wait_for(1)
        assert (event.code, event.will_reconnect) == (1000, False)
        assert session.state is SessionState.CLOSED


async def test_responses_out_of_order_reach_their_callers(make_session: SessionFactory) -> None:
    async def handler(ws: ServerConnection) -> None:
        join = json.loads(await ws.recv())
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": join["id"], "result": JOIN_RESULT}))
        held = [json.loads(await ws.recv()) for _ in range(5)]
        for request in reversed(held):  # answer the last first
            result = {"serverTime": float(request["id"])}
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}))
        async for raw in ws:
            reply = {"jsonrpc": "2.0", "id": json.loads(raw)["id"], "result": {}}
            await ws.send(json.dumps(reply))

    async for url in _script(handler):
        session = make_session(url=url)
        await session.connect()
        calls = [asyncio.ensure_future(session.ping()) for _ in range(5)]
        times = await asyncio.wait_for(asyncio.gather(*calls), 5)
        assert times == sorted(times)  # each call got the answer to its own id
        assert len(set(times)) == 5
