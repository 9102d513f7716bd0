"""A hostile or broken server (issue 15, the client's part), scripted with plain websockets.

Request ids that are no ids, close codes the client must report as they are,
and a ``seq`` that cannot be real.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from roomsignal import ErrorCode, SessionErrorException, SessionState

from .conftest import JOIN_RESULT, Recorder, SessionFactory

Handler = Callable[[ServerConnection], Awaitable[None]]


def _join_result(seq: int = 0, *, resumed: bool = False) -> dict[str, Any]:
    return {**JOIN_RESULT, "seq": seq, "resumed": resumed}


def _reply(request_id: object, result: dict[str, Any]) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def _error_note(seq: int, message: str = "full") -> str:
    params = {"seq": seq, "code": 206, "message": message, "data": {}}
    return json.dumps({"jsonrpc": "2.0", "method": "sessionError", "params": params})


async def _answer_the_rest(ws: ServerConnection) -> None:
    """Answer every later request (ping with a time, anything else with {})."""
    async for raw in ws:
        request = json.loads(raw)
        result = {"serverTime": 1.0} if request["method"] == "ping" else {}
        await ws.send(_reply(request["id"], result))


async def _served(handler: Handler) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_a_response_whose_id_is_true_answers_no_request(
    make_session: SessionFactory,
) -> None:
    """JSON ``true`` is not request 1 (``True == 1`` in Python): a protocol error instead."""

    async def handler(ws: ServerConnection) -> None:
        join = json.loads(await ws.recv())
        assert join["id"] == 1
        await ws.send(_reply(True, {"not": "a join result"}))
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": True, "error": {"code": 1, "message": "x"}})
        )
        await ws.send(_reply(1.0, {"not": "a join result"}))
        await ws.send(_reply(join["id"], _join_result()))
        await _answer_the_rest(ws)

    async for url in _served(handler):
        session = make_session(url=url, reconnect=None)
        errors = Recorder()
        session.on_session_error(errors)
        await session.connect()  # the join got its own answer, not the one with id true
        assert session.participant_id == "p1"
        got = await errors.wait_for(3)
        assert [(e.code, e.source, e.method) for e in got] == [(-32600, "client", None)] * 3
        assert all(e.data["errors"][0]["loc"][0] == "id" for e in got)
        assert await session.ping() == 1.0
        assert session.state is SessionState.JOINED


def _request(raw: str | bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(raw)
    return value


async def test_a_slow_close_4002_is_reported_with_its_code_and_resumed(
    make_session: SessionFactory,
) -> None:
    """4002 (``slow``) is a drop like any other: resume, and the replay fills the gap."""
    joins: list[dict[str, Any]] = []
    pings: list[int] = []

    async def handler(ws: ServerConnection) -> None:
        join = _request(await ws.recv())
        joins.append(join["params"])
        if len(joins) == 1:
            await ws.send(_reply(join["id"], _join_result()))
            for seq in (1, 2):
                await ws.send(_error_note(seq, f"e{seq}"))
            ping = _request(await ws.recv())  # a request in flight when the server gives up
            assert ping["method"] == "ping"
            pings.append(ping["id"])
            await ws.close(4002, "slow")
            return
        await ws.send(_reply(join["id"], _join_result(4, resumed=True)))
        for seq in (3, 4):
            await ws.send(_error_note(seq, f"e{seq}"))
        again = _request(await ws.recv())  # sent again after the resume, with its id
        pings.append(again["id"])
        await ws.send(_reply(again["id"], {"serverTime": 2.0}))
        await _answer_the_rest(ws)

    async for url in _served(handler):
        session = make_session(url=url)
        errors, disconnected, reconnecting, reconnected = (Recorder() for _ in range(4))
        session.on_session_error(errors)
        session.on_disconnected(disconnected)
        session.on_reconnecting(reconnecting)
        session.on_reconnected(reconnected)
        await session.connect()
        await errors.wait_for(2)
        # In flight across the drop: sent again after the resume and answered there.
        assert await session.ping() == 2.0
        assert len(pings) == 2 and pings[0] == pings[1]
        (event,) = await disconnected.wait_for(1)
        assert (event.code, event.reason, event.will_reconnect) == (4002, "slow", True)
        (attempt,) = await reconnecting.wait_for(1)
        assert (attempt.code, attempt.reason) == (4002, "slow")
        (back,) = await reconnected.wait_for(1)
        assert (back.resumed, back.replayed, back.resent) == (True, 2, 1)
        assert joins[1]["oldParticipantSecret"] == "secret" and joins[1]["lastSeq"] == 2
        got = await errors.wait_for(4)
        server_errors = [e.message for e in got if e.source == "server"]
        assert server_errors == ["e1", "e2", "e3", "e4"]  # once each, in order
        assert session.last_seq == 4 and session.state is SessionState.JOINED


async def test_a_close_without_reconnection_reports_its_code_in_the_903(
    make_session: SessionFactory,
) -> None:
    async def handler(ws: ServerConnection) -> None:
        join = _request(await ws.recv())
        await ws.send(_reply(join["id"], _join_result()))
        await ws.close(4002, "slow")

    async for url in _served(handler):
        session = make_session(url=url, reconnect=None)
        errors = Recorder()
        session.on_session_error(errors)
        await session.connect()
        (error,) = await errors.wait_for(1)
        assert error.code == ErrorCode.CONNECTION_LOST_ERROR_CODE
        assert (error.data["closeCode"], error.data["closeReason"]) == (4002, "slow")
        assert "4002" in error.message


async def test_a_join_result_over_max_size_is_a_1009_not_an_opaque_901(
    make_session: SessionFactory,
) -> None:
    async def handler(ws: ServerConnection) -> None:
        join = _request(await ws.recv())
        result = _join_result()
        result["participants"] = [{"padding": "x" * 8192}]
        await ws.send(_reply(join["id"], result))
        await ws.wait_closed()

    async for url in _served(handler):
        session = make_session(url=url, reconnect=None, max_size=4096)
        errors = Recorder()
        session.on_session_error(errors)
        with pytest.raises(SessionErrorException) as info:
            await session.connect()
        error = info.value.error
        assert error.code == ErrorCode.GENERIC_CONNECTION_ERROR and error.method == "join"
        assert error.data["closeCode"] == 1009
        assert "1009" in error.message and "closed by the client" in error.data["closeReason"]
        assert (await errors.wait_for(1))[0] is error
        assert session.state is SessionState.IDLE


async def test_a_frame_over_max_size_is_a_1009_drop_and_a_resume(
    make_session: SessionFactory,
) -> None:
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        join = _request(await ws.recv())
        if connections == 1:
            await ws.send(_reply(join["id"], _join_result()))
            await ws.send(_error_note(1, "x" * 8192))
            await ws.wait_closed()
            return
        await ws.send(_reply(join["id"], _join_result(1, resumed=True)))
        await ws.send(_error_note(1, "small enough"))
        await _answer_the_rest(ws)

    async for url in _served(handler):
        session = make_session(url=url, max_size=4096)
        disconnected, reconnecting, reconnected = Recorder(), Recorder(), Recorder()
        errors = Recorder()
        session.on_session_error(errors)
        session.on_disconnected(disconnected)
        session.on_reconnecting(reconnecting)
        session.on_reconnected(reconnected)
        await session.connect()
        (event,) = await disconnected.wait_for(1)
        assert event.code == 1009 and event.will_reconnect
        assert event.reason.startswith("closed by the client")
        assert (await reconnecting.wait_for(1))[0].code == 1009
        await reconnected.wait_for(1)
        (error,) = await errors.wait_for(1)
        assert error.message == "small enough" and session.last_seq == 1


async def test_a_seq_that_cannot_be_real_is_reported_and_resumed(
    make_session: SessionFactory,
) -> None:
    """seq 10**18 after seq 5: a protocol error, a 1002 drop and a resume from lastSeq 5."""
    joins: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection) -> None:
        join = _request(await ws.recv())
        joins.append(join["params"])
        if len(joins) == 1:
            await ws.send(_reply(join["id"], _join_result()))
            for seq in range(1, 6):
                await ws.send(_error_note(seq, f"e{seq}"))
            await ws.send(_error_note(10**18, "bogus"))
            await ws.send(_error_note(6, "after the bogus one"))  # not on this connection
            await ws.wait_closed()
            return
        await ws.send(_reply(join["id"], _join_result(7, resumed=True)))
        for seq in (6, 7):
            await ws.send(_error_note(seq, f"e{seq}"))
        await _answer_the_rest(ws)

    async for url in _served(handler):
        session = make_session(url=url)
        errors, disconnected, reconnected = Recorder(), Recorder(), Recorder()
        session.on_session_error(errors)
        session.on_disconnected(disconnected)
        session.on_reconnected(reconnected)
        await session.connect()
        (back,) = await reconnected.wait_for(1)
        assert back.resumed and back.replayed == 2
        (event,) = await disconnected.wait_for(1)
        assert (event.code, event.will_reconnect) == (1002, True)
        assert joins[1]["lastSeq"] == 5 and joins[1]["oldParticipantSecret"] == "secret"
        got = await errors.wait_for(8)
        assert [e.message for e in got if e.source == "server"] == [f"e{i}" for i in range(1, 8)]
        (jump,) = [e for e in got if e.source == "client"]
        assert jump.code == ErrorCode.INVALID_PARAMS and jump.category == "protocol"
        assert (jump.data["seq"], jump.data["lastSeq"]) == (10**18, 5)
        assert jump.data["errors"][0]["loc"] == ["params", "seq"]
        assert jump.method == "sessionError"
        assert session.last_seq == 7 and await session.ping() == 1.0


async def test_evicted_as_slow_with_4002_then_resumed_with_nothing_lost(
    make_session: SessionFactory,
) -> None:
    """A slow listener holds reads back, the server's buffer grows, it evicts with 4002.

    The peer evicts a connection once more than 1 MiB waits in its write
    buffer, as a server with a send-queue limit does: that only happens if
    the client stopped reading. The client resumes from the last ``seq`` it
    read and the replay brings the rest: every event once, in order.
    """
    total = 50_000
    frames = [_error_note(seq, f"e{seq}") for seq in range(1, total + 1)]
    joins: list[dict[str, Any]] = []

    async def handler(ws: ServerConnection) -> None:
        join = _request(await ws.recv())
        joins.append(join["params"])
        if len(joins) == 1:
            await ws.send(_reply(join["id"], _join_result()))
            for frame in frames:
                await ws.send(frame)
                if ws.transport.get_write_buffer_size() > 1 << 20:
                    await ws.close(4002, "slow")
                    return
            await ws.wait_closed()
            return
        last = join["params"]["lastSeq"]
        await ws.send(_reply(join["id"], _join_result(total, resumed=True)))
        for frame in frames[last:]:
            await ws.send(frame)
        await _answer_the_rest(ws)

    async with serve(handler, "127.0.0.1", 0, write_limit=16 << 20) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        session = make_session(url=url, ping_interval=None, max_queued_events=1024)
        gate = asyncio.Event()
        messages: list[str] = []
        done = asyncio.Event()

        async def slow(error: Any) -> None:
            if not gate.is_set():
                await gate.wait()
            messages.append(error.message)
            if len(messages) == total:
                done.set()

        disconnected, reconnected = Recorder(), Recorder()
        session.on_session_error(slow)
        session.on_disconnected(disconnected)
        session.on_reconnected(reconnected)
        await session.connect()
        async with asyncio.timeout(30):
            while not session.reading_paused:  # noqa: ASYNC110 - a property, no event
                await asyncio.sleep(0.005)
            gate.set()
            (event,) = await disconnected.wait_for(1, timeout=30)
            assert (event.code, event.reason, event.will_reconnect) == (4002, "slow", True)
            (back,) = await reconnected.wait_for(1, timeout=30)
            assert back.resumed
            await done.wait()
        assert 0 < joins[1]["lastSeq"] < total
        assert back.replayed == total - joins[1]["lastSeq"]
        assert messages == [f"e{seq}" for seq in range(1, total + 1)]
        assert session.last_seq == total
