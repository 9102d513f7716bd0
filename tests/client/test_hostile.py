"""A hostile or broken server (issue 15, the client's part), scripted with plain websockets.

Request ids that are no ids, close codes the client must report as they are,
and a ``seq`` that cannot be real.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from roomsignal import SessionState

from .conftest import Recorder, SessionFactory

Handler = Callable[[ServerConnection], Awaitable[None]]


def _join_result(seq: int = 0, *, resumed: bool = False) -> dict[str, Any]:
    return {
        "sessionId": "room",
        "participantId": "p1",
        "participantSecret": "secret",
        "participantType": "full",
        "roles": [],
        "participants": [],
        "seq": seq,
        "resumed": resumed,
    }


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
