"""roomsignal.js against a scripted server: a ``seq`` that cannot be real, small gaps, duplicates.

The page comes from the reference server (``/roomsignal.js``); its ``Session``
talks to a test-local WebSocket server on 127.0.0.1 (port 0) that the test
drives frame by frame, so it can send what no honest server sends: a
notification ``seq`` far past the last one, with real frames queued behind it
in the same TCP write.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.protocol import State

from roomsignal.server import SignalingServer

from .conftest import WAIT, open_page

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET_1 = "secret-of-the-seat"
UNTRUSTED_CLOSE = 4003  # roomsignal.js's close code for a connection it cannot trust
UNTRUSTED_REASON = "a notification's seq cannot be real"

# A JS session in the page with `options`, recording what its listeners get.
START = """async ([url, options]) => {
  const { Session } = await import("/roomsignal.js");
  const s = new Session(url, { token: "any", name: "js", ...options });
  window.s = s;
  window.got = { message: [], sessionError: [], disconnected: [], reconnected: [] };
  s.onMessage((m) => window.got.message.push(m.text));
  s.onSessionError((e) => window.got.sessionError.push(e));
  s.onDisconnected((d) => window.got.disconnected.push(d));
  s.onReconnected((r) => window.got.reconnected.push(r));
  await s.join();
  return s.state;
}"""


class ScriptedServer:
    """A WebSocket server on 127.0.0.1 (port 0) whose connections the test drives."""

    def __init__(self) -> None:
        self._accepted: asyncio.Queue[ServerConnection] = asyncio.Queue()
        self._server: Server | None = None

    async def _handler(self, ws: ServerConnection) -> None:
        await self._accepted.put(ws)
        await ws.wait_closed()

    async def start(self) -> None:
        self._server = await serve(self._handler, "127.0.0.1", 0, subprotocols=["roomsignal.v1"])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def accept(self) -> ServerConnection:
        """The next connection the page opens."""
        return await asyncio.wait_for(self._accepted.get(), WAIT)


@pytest_asyncio.fixture(loop_scope="module")
async def scripted() -> AsyncIterator[ScriptedServer]:
    srv = ScriptedServer()
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


async def _request(ws: ServerConnection, method: str) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    assert frame["method"] == method, frame
    return frame


def _joined(request: dict[str, Any], *, seq: int, resumed: bool) -> str:
    result = {
        "sessionId": "room",
        "participantId": "p-js",
        "participantSecret": SECRET_1,
        "participantType": "full",
        "roles": [],
        "participants": [],
        "seq": seq,
        "resumed": resumed,
    }
    return json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result})


def _note(seq: int, text: str) -> str:
    params = {"from": "p-bot", "text": text, "private": False, "seq": seq}
    return json.dumps({"jsonrpc": "2.0", "method": "messageReceived", "params": params})


def _burst(ws: ServerConnection, frames: list[str]) -> None:
    """Send ``frames`` in one TCP write, so the browser reads them together."""
    for frame in frames:
        ws.protocol.send_text(frame.encode())
    ws.transport.write(b"".join(ws.protocol.data_to_send()))


async def _join(page: Any, scripted: ScriptedServer, options: dict[str, Any]) -> ServerConnection:
    """The page's session joins the scripted server afresh (seq 0)."""
    joining = asyncio.create_task(page.evaluate(START, [scripted.url, options]))
    try:
        ws = await scripted.accept()
        join = await _request(ws, "join")
        assert "oldParticipantSecret" not in join["params"]
        await ws.send(_joined(join, seq=0, resumed=False))
    finally:
        state = await joining
    assert state == "joined"
    return ws


async def _leave(page: Any, ws: ServerConnection) -> None:
    leaving = asyncio.create_task(page.evaluate("window.s.leave()"))
    try:
        request = await _request(ws, "leave")
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {}}))
    finally:
        await leaving


async def _wait(page: Any, expression: str) -> None:
    await page.wait_for_function(expression, timeout=WAIT * 1000)


@pytest.mark.parametrize(
    ("options", "jump"),
    [({}, 65536 + 1), ({"maxSeqJump": 8}, 8 + 1)],
    ids=["default-max-seq-jump", "max-seq-jump-option"],
)
async def test_seq_jump_is_reported_not_delivered_and_resumed_from_the_last_real_seq(
    server: SignalingServer,
    context: Any,
    scripted: ScriptedServer,
    options: dict[str, Any],
    jump: int,
) -> None:
    page = await open_page(context, server)
    ws1 = await _join(page, scripted, options)
    bogus = 3 + jump
    # One read: three real notifications, the bogus one, and two real ones behind it.
    _burst(
        ws1,
        [
            _note(1, "m1"),
            _note(2, "m2"),
            _note(3, "m3"),
            _note(bogus, "bogus"),
            _note(4, "queued-4"),
            _note(5, "queued-5"),
        ],
    )
    await asyncio.wait_for(ws1.wait_closed(), WAIT)
    assert ws1.close_code == UNTRUSTED_CLOSE
    assert ws1.close_reason == UNTRUSTED_REASON
    # The resume: the seat's secret and the last seq that was real.
    ws2 = await scripted.accept()
    rejoin = await _request(ws2, "join")
    assert rejoin["params"]["oldParticipantSecret"] == SECRET_1
    assert rejoin["params"]["lastSeq"] == 3
    await ws2.send(_joined(rejoin, seq=5, resumed=True))
    _burst(ws2, [_note(4, "m4"), _note(5, "m5")])  # the replay
    await _wait(page, "window.got.reconnected.length === 1")
    await ws2.send(_note(6, "m6"))
    await _wait(page, "window.got.message.includes('m6')")
    got = await page.evaluate("window.got")
    assert await page.evaluate("[window.s.lastSeq, window.s.state]") == [6, "joined"]
    await _leave(page, ws2)

    assert got["message"] == ["m1", "m2", "m3", "m4", "m5", "m6"]
    [error] = got["sessionError"]
    assert (error["code"], error["name"], error["category"], error["source"]) == (
        -32602,
        "INVALID_PARAMS",
        "protocol",
        "client",
    )
    assert error["method"] == "messageReceived"
    data = error["data"]
    assert (data["name"], data["method"], data["seq"], data["lastSeq"]) == (
        "INVALID_PARAMS",
        "messageReceived",
        bogus,
        3,
    )
    [detail] = data["errors"]
    assert detail["loc"] == ["params", "seq"] and "cannot be real" in detail["msg"]
    assert "resuming from seq 3" in error["message"]
    assert got["disconnected"] == [
        {"code": UNTRUSTED_CLOSE, "reason": UNTRUSTED_REASON, "willReconnect": True}
    ]
    [again] = got["reconnected"]
    assert (again["resumed"], again["replayed"], again["stateReset"]) == (True, 2, False)


async def test_a_gap_up_to_max_seq_jump_is_delivered_and_duplicates_are_dropped(
    server: SignalingServer, context: Any, scripted: ScriptedServer
) -> None:
    page = await open_page(context, server)
    ws = await _join(page, scripted, {})
    _burst(
        ws,
        [
            _note(1, "a"),
            _note(1 + 65536, "b"),  # exactly max_seq_jump ahead: delivered, with a warning
            _note(1 + 65536, "dup"),  # the same seq again
            _note(5, "old"),  # an older seq
            _note(2 + 65536, "c"),
        ],
    )
    await _wait(page, "window.got.message.includes('c')")
    got = await page.evaluate("window.got")
    assert got["message"] == ["a", "b", "c"]
    assert got["sessionError"] == [] and got["disconnected"] == []
    assert await page.evaluate("[window.s.lastSeq, window.s.state]") == [2 + 65536, "joined"]
    assert ws.state is State.OPEN
    assert any("seq jumped from 1 to 65537" in line for line in page.console_log)
    await _leave(page, ws)


async def test_max_seq_jump_below_one_is_refused(server: SignalingServer, context: Any) -> None:
    page = await open_page(context, server)
    refused = await page.evaluate(
        """async () => {
          const { Session, MAX_SEQ_JUMP } = await import("/roomsignal.js");
          const out = [MAX_SEQ_JUMP, new Session("ws://127.0.0.1:9").maxSeqJump];
          for (const bad of [0, -1, 1.5, "8"]) {
            try { new Session("ws://127.0.0.1:9", { maxSeqJump: bad }); out.push("accepted"); }
            catch (exc) { out.push(exc.name); }
          }
          return out;
        }"""
    )
    assert refused == [65536, 65536, "RangeError", "RangeError", "RangeError", "RangeError"]


async def test_a_notification_without_an_integer_seq_is_reported_and_not_delivered(
    server: SignalingServer, context: Any, scripted: ScriptedServer
) -> None:
    page = await open_page(context, server)
    ws = await _join(page, scripted, {})
    no_seq = json.loads(_note(1, "no seq"))
    del no_seq["params"]["seq"]
    _burst(
        ws,
        [
            json.dumps(no_seq),
            _note(1, "fraction").replace('"seq": 1', '"seq": 1.5'),
            _note(1, "text").replace('"seq": 1', '"seq": "1"'),
            _note(1, "huge").replace('"seq": 1', '"seq": 1e400'),  # Infinity in JS
            _note(1, "ok"),
        ],
    )
    await _wait(page, "window.got.message.includes('ok')")
    got = await page.evaluate("window.got")
    assert got["message"] == ["ok"]
    assert [(e["code"], e["method"], e["source"]) for e in got["sessionError"]] == [
        (-32602, "messageReceived", "client")
    ] * 4
    msgs = [e["data"]["errors"][0]["msg"] for e in got["sessionError"]]
    assert msgs == ["Field required"] + ["Input should be a valid integer"] * 3
    for error in got["sessionError"]:
        assert error["data"]["name"] == "INVALID_PARAMS"
        assert error["data"]["errors"][0]["loc"] == ["params", "seq"]
    assert got["disconnected"] == [] and ws.state is State.OPEN
    assert await page.evaluate("window.s.lastSeq") == 1
    await _leave(page, ws)


async def test_a_server_that_keeps_jumping_ends_the_session_with_903_not_a_loop(
    server: SignalingServer, context: Any, scripted: ScriptedServer
) -> None:
    """Resumed connections that deliver nothing new do not reset the count of attempts."""
    page = await open_page(context, server)
    ws = await _join(page, scripted, {"maxAttempts": 3})
    _burst(ws, [_note(1, "m1"), _note(2, "m2"), _note(1 << 40, "bogus")])
    resumes = []
    for _ in range(3):
        await asyncio.wait_for(ws.wait_closed(), WAIT)
        assert ws.close_code == UNTRUSTED_CLOSE
        ws = await scripted.accept()
        rejoin = await _request(ws, "join")
        resumes.append((rejoin["params"]["oldParticipantSecret"], rejoin["params"]["lastSeq"]))
        await ws.send(_joined(rejoin, seq=2, resumed=True))
        await ws.send(_note(1 << 40, "bogus again"))
    await asyncio.wait_for(ws.wait_closed(), WAIT)
    await _wait(page, "window.s.state === 'closed'")
    got = await page.evaluate("window.got")
    assert resumes == [(SECRET_1, 2)] * 3
    assert got["message"] == ["m1", "m2"]
    assert [e["code"] for e in got["sessionError"]] == [-32602] * 4 + [903]
    assert [r["attempts"] for r in got["reconnected"]] == [1, 2, 3]
    assert got["disconnected"][-1]["willReconnect"] is False


async def test_a_resume_that_delivers_something_new_resets_the_count_of_attempts(
    server: SignalingServer, context: Any, scripted: ScriptedServer
) -> None:
    page = await open_page(context, server)
    ws = await _join(page, scripted, {"maxAttempts": 2})
    _burst(ws, [_note(1, "m1"), _note(1 << 40, "bogus")])
    for seq in range(2, 6):  # more drops than maxAttempts, each after a new notification
        await asyncio.wait_for(ws.wait_closed(), WAIT)
        ws = await scripted.accept()
        rejoin = await _request(ws, "join")
        assert rejoin["params"]["lastSeq"] == seq - 1
        await ws.send(_joined(rejoin, seq=seq, resumed=True))
        _burst(ws, [_note(seq, f"m{seq}"), _note(1 << 40, "bogus")])
    await asyncio.wait_for(ws.wait_closed(), WAIT)
    ws = await scripted.accept()
    rejoin = await _request(ws, "join")
    await ws.send(_joined(rejoin, seq=5, resumed=True))
    await _wait(page, "window.got.reconnected.length === 5")
    got = await page.evaluate("window.got")
    assert got["message"] == ["m1", "m2", "m3", "m4", "m5"]
    assert [r["attempts"] for r in got["reconnected"]] == [1] * 5
    assert [e["code"] for e in got["sessionError"]] == [-32602] * 5
    await _leave(page, ws)


async def test_a_frame_that_is_not_json_is_a_client_error_naming_its_code(
    server: SignalingServer, context: Any, scripted: ScriptedServer
) -> None:
    """-32700 with ``data.name`` (as the Python client's own errors), and the next frame is read."""
    page = await open_page(context, server)
    ws = await _join(page, scripted, {})
    _burst(ws, ["not json at all", _note(1, "after")])
    await _wait(page, "window.got.message.length === 1")
    errors = await page.evaluate("window.got.sessionError")
    assert [(e["code"], e["source"], e["data"]) for e in errors] == [
        (-32700, "client", {"name": "PARSE_ERROR"})
    ]
    assert await page.evaluate("window.got.message") == ["after"]
    await _leave(page, ws)
