"""The server processes the benchmarks talk to, one kind per process.

    python benchmarks/servers.py ref  --secret S [--stamp] [--max-sessions N]
    python benchmarks/servers.py echo
    python benchmarks/servers.py sio
    python benchmarks/servers.py stub [--stamp] [--frame JSON]

Each binds 127.0.0.1 on port 0, prints ``PORT <n>`` on stdout once it
listens, and runs until SIGTERM/SIGINT or until its stdin closes (so a
crashed parent never leaves one behind).

- ``ref``: the reference ``roomsignal.server.SignalingServer`` with simulation
  allowed and limits high enough for the benchmarks.
- ``echo``: a bare websockets echo server (the ``raw_rtt_us`` baseline).
- ``sio``: python-socketio's ``AsyncServer`` on aiohttp, which answers a
  ``simulateScenario`` event with ``count`` ``sessionError`` events shaped
  like roomsignal's (the ``socketio_events_per_s`` peer).
- ``stub``: a bare websockets server that speaks just enough of the protocol
  (``join``, ``ping``, ``leave``, ``simulateScenario sessionErrors``) and
  sends pre-encoded frames, byte for byte those of the reference server, as
  fast as websockets can: the client-bound variant of the events benchmark.

``--stamp`` (ref and stub) writes ``benchSentNs``, the server's
``time.monotonic_ns()`` taken as websockets frames the notification for
writing (``Protocol.send_text``), into ``params.data`` of every
``sessionError``; CLOCK_MONOTONIC is one clock for every process of the
machine, so the client can subtract.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

SUBPROTOCOL = "roomsignal.v1"
STAMP_FIELD = "benchSentNs"
SESSION_ERROR_MARK = '"method":"sessionError"'
STUB_CHUNK = 512


def _announce(port: int) -> None:
    print(f"PORT {port}", flush=True)


async def _wait_for_stop() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def watch_stdin() -> None:
        with contextlib.suppress(Exception):
            sys.stdin.buffer.read()  # returns at EOF: the parent is gone or done
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    await stop.wait()


def _stamped(frame: str) -> str:
    """The frame with the send time in ``params.data`` (taken after the rewrite)."""
    value = json.loads(frame)
    data = value["params"].setdefault("data", {})
    data[STAMP_FIELD] = 0
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    marker = f'"{STAMP_FIELD}":0'
    return text.replace(marker, f'"{STAMP_FIELD}":{time.monotonic_ns()}', 1)


def _install_stamp() -> None:
    """Stamp every sessionError frame as websockets frames it for writing.

    Wraps ``websockets.protocol.Protocol.send_text``, which every text frame
    goes through (``Connection.send`` and direct protocol writes alike); the
    bytes reach the transport in the same synchronous call or the next one.
    """
    from websockets.protocol import Protocol

    original = Protocol.send_text
    mark = SESSION_ERROR_MARK.encode()

    def send_text(self: Protocol, data: bytes, fin: bool = True) -> None:
        if mark in data:
            data = _stamped(data.decode()).encode()
        original(self, data, fin)

    Protocol.send_text = send_text  # type: ignore[method-assign]


def _select_subprotocol(_connection: ServerConnection, offered: Any) -> str | None:
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


# --- ref --------------------------------------------------------------------


async def run_ref(args: argparse.Namespace) -> None:
    from roomsignal.server import SignalingServer

    if args.stamp:
        _install_stamp()
    async with SignalingServer(
        host="127.0.0.1",
        port=0,
        secret=args.secret,
        allow_simulation=True,
        max_sessions=args.max_sessions,
        max_streaming_participants=args.max_streaming,
    ) as server:
        _announce(server.port)
        await _wait_for_stop()


# --- echo -------------------------------------------------------------------


async def run_echo(_args: argparse.Namespace) -> None:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(
        echo, "127.0.0.1", 0, compression=None, select_subprotocol=_select_subprotocol
    ) as server:
        _announce(server.sockets[0].getsockname()[1])
        await _wait_for_stop()


# --- sio --------------------------------------------------------------------


async def run_sio(_args: argparse.Namespace) -> None:
    import socketio
    from aiohttp import web

    from roomsignal.catalog import lookup

    sio = socketio.AsyncServer(async_mode="aiohttp")
    app = web.Application()
    sio.attach(app)

    @sio.on("simulateScenario")  # type: ignore[untyped-decorator]
    async def simulate(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        code = int(data.get("code", 206))
        count = int(data.get("count", 1))
        name = lookup(code).name
        message = data.get("message", "simulated session error")
        for seq in range(1, count + 1):
            await sio.emit(
                "sessionError",
                {"seq": seq, "code": code, "message": message, "data": {"name": name}},
                to=sid,
            )
        return {}

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        server = site._server
        assert server is not None
        _announce(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await _wait_for_stop()
    finally:
        await runner.cleanup()


# --- stub -------------------------------------------------------------------


def _default_frame() -> str:
    """A sessionError notification as the codec writes it (seq 1)."""
    from roomsignal.catalog import lookup
    from roomsignal.protocol import SessionErrorNotification, SessionErrorParams, encode

    params = SessionErrorParams(
        seq=1,
        code=206,
        message="simulated session error",
        data={"name": lookup(206).name},
    )
    return encode(SessionErrorNotification(params=params))


def _frame_template(frame: str) -> tuple[str, str]:
    """Split a sessionError frame around its seq: (head, tail)."""
    value = json.loads(frame)
    value["params"]["seq"] = 987654321987
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    head, _, tail = text.partition("987654321987")
    return head, tail


async def run_stub(args: argparse.Namespace) -> None:
    head, tail = _frame_template(args.frame or _default_frame())
    if args.stamp:
        _install_stamp()
    counter = 0

    def response(request_id: Any, result: dict[str, Any]) -> str:
        return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})

    async def handler(ws: ServerConnection) -> None:
        nonlocal counter
        seq = 0
        async for raw in ws:
            request = json.loads(raw)
            request_id = request.get("id")
            method = request.get("method")
            params = request.get("params") or {}
            if method == "join":
                counter += 1
                claims = _unverified_claims(params.get("token", ""))
                result = {
                    "sessionId": claims.get("sid", "stub"),
                    "participantId": f"p{counter}",
                    "participantSecret": f"s{counter}",
                    "participantType": params.get("participantType", "full"),
                    "roles": [],
                    "participants": [],
                    "seq": seq,
                    "resumed": False,
                }
                await ws.send(response(request_id, result))
            elif method == "ping":
                await ws.send(response(request_id, {"serverTime": time.time()}))
            elif method == "leave":
                await ws.send(response(request_id, {}))
                await ws.close()
                return
            elif method == "simulateScenario" and params.get("scenario") == "sessionErrors":
                await ws.send(response(request_id, {}))
                remaining = int(params.get("count", 1))
                while remaining > 0:  # chunks written at once, as the reference server does
                    chunk = min(remaining, STUB_CHUNK)
                    remaining -= chunk
                    for number in range(seq + 1, seq + chunk + 1):
                        ws.protocol.send_text(f"{head}{number}{tail}".encode())
                    seq += chunk
                    ws.send_data()
                    await ws.drain()
            else:
                error = {"code": -32601, "message": "not in the stub", "data": {"name": "X"}}
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error}))

    async with serve(
        handler,
        "127.0.0.1",
        0,
        compression=None,
        select_subprotocol=_select_subprotocol,
        max_size=None,
    ) as server:
        _announce(server.sockets[0].getsockname()[1])
        await _wait_for_stop()


def _unverified_claims(token: str) -> dict[str, Any]:
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["ref", "echo", "sio", "stub"])
    parser.add_argument("--secret", default="bench-secret")
    parser.add_argument("--stamp", action="store_true")
    parser.add_argument("--max-sessions", type=int, default=20_000)
    parser.add_argument("--max-streaming", type=int, default=64)
    parser.add_argument("--frame", default=None, help="a sessionError frame for the stub to copy")
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, {args.cpu})
    runner = {"ref": run_ref, "echo": run_echo, "sio": run_sio, "stub": run_stub}[args.kind]
    asyncio.run(runner(args))


if __name__ == "__main__":
    main()
