"""Hostile-load soaks (issue 15, server side): each attack of the issue's table, with figures.

    python benchmarks/hostile.py [--only NAME ...] [--json]

The reference server runs in its own process (its RSS is read from
/proc/<pid>/status: growth = peak VmHWM minus RSS before the attack); the
attackers run in a second process, and a "good" client in a room of its own
pings from this process every 5 ms (p50/p99 of its round trips while the
attack proper runs, after the attacker's setup, such as 500 joins). Bars
(issue 15): RSS growth < 256 MiB, good p99 < 50 ms, 0 seats leaked (the
server's participant count after the attackers are gone, read from its
stats line). Join cost at 2,000 and 10,000 members is measured on the pure
``Rooms`` (the server's own work, no sockets).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from roomsignal.tokens import mint

SECRET = "hostile-benchmark-secret-0123456789abcdef"
HERE = os.path.dirname(os.path.abspath(__file__))


# --- the server process ---------------------------------------------------------------


def serve_main(options: dict[str, Any]) -> None:
    """Run a SignalingServer with ``options``; print PORT, then a stats line per request."""
    from roomsignal.server import SignalingServer

    async def main() -> None:
        server = SignalingServer(secret=SECRET, allow_simulation=True, **options)
        await server.start()
        print(f"PORT {server.port}", flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while await reader.readline():
            stats = dict(server.rooms.stats(), conns=server.connection_count)
            stats["replayBytes"] = server.rooms.replay_bytes()
            print("STATS " + json.dumps(stats), flush=True)
        await server.close(graceful=False)

    asyncio.run(main())


class Server:
    def __init__(self, **options: Any) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), line
        self.port = int(line.split()[1])
        self.url = f"ws://127.0.0.1:{self.port}"
        self.base_rss = self.rss()

    def _status(self, key: str) -> int:
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        return 0

    def rss(self) -> int:
        return self._status("VmRSS:")

    def peak(self) -> int:
        return self._status("VmHWM:")

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        return dict(json.loads(line.split(" ", 1)[1]))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- raw clients ---------------------------------------------------------------------------


async def dial(url: str, **kw: Any) -> ClientConnection:
    kw.setdefault("max_size", None)
    return await connect(
        url,
        subprotocols=["roomsignal.v1"],  # type: ignore[list-item]
        compression=None,
        close_timeout=1,
        open_timeout=60,
        **kw,
    )


def frame(request_id: int, method: str, **params: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})


async def call(ws: ClientConnection, request_id: int, method: str, **params: Any) -> dict[str, Any]:
    await ws.send(frame(request_id, method, **params))
    while True:
        answer = json.loads(await ws.recv())
        if answer.get("id") == request_id:
            return dict(answer)


async def join(ws: ClientConnection, room: str, name: str, **params: Any) -> dict[str, Any]:
    answer = await call(ws, 1, "join", token=mint(SECRET, room, ttl=86400), name=name, **params)
    assert "result" in answer, answer
    return dict(answer["result"])


async def drain(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):
        async for _ in ws:
            pass


# --- attacks (each runs in the attacker process) -------------------------------------------


async def attack_replay(url: str) -> dict[str, Any]:
    """40 seats in their resume window; one member broadcasts 1,100 messages of 60 KB."""
    talker = await dial(url)
    await join(talker, "attack", "talker")
    seats = []
    for n in range(40):
        ws = await dial(url)
        await join(ws, "attack", f"seat{n}", participantType="viewer")
        seats.append(ws)
    for ws in seats:  # connectionDrop: the server aborts; each seat waits resume_window
        await ws.send(frame(2, "simulateScenario", scenario="connectionDrop"))
        await drain(ws)
    text = "x" * 60_000
    attacking(True)
    for n in range(1100):
        await talker.send(frame(10 + n, "sendMessage", text=text))
        if n % 50 == 49:
            await call(talker, 100_000 + n, "ping")
    await call(talker, 1, "ping")
    attacking(False)
    sent = 1100 * 60_000
    await talker.close()
    return {"sent_mib": round(sent / 2**20, 1)}


async def attack_non_readers(url: str) -> dict[str, Any]:
    """300 members that never read, each joining with the largest metadata allowed."""
    talker = await dial(url)
    await join(talker, "attack", "talker")
    quiet = []
    meta = {"m": "x" * 4000}
    attacking(True)
    for n in range(300):
        ws = await dial(url, max_queue=1)
        await ws.send(
            frame(
                1,
                "join",
                token=mint(SECRET, "attack"),
                name=f"q{n}",
                participantType="viewer",
                metadata=meta,
            )
        )
        quiet.append(ws)
    text = "y" * 16000
    for n in range(400):
        await talker.send(frame(10 + n, "sendMessage", text=text))
        if n % 20 == 19:
            await call(talker, 100_000 + n, "ping")
    await call(talker, 2, "ping")
    attacking(False)
    for ws in quiet:
        ws.transport.abort()
    await talker.close()
    return {"non_readers": 300}


async def attack_chat_flood(url: str) -> dict[str, Any]:
    """1,000 chat messages to a 500-member room (members read and discard)."""
    members = []
    for n in range(499):
        ws = await dial(url)
        await join(ws, "flood", f"m{n}", participantType="viewer")
        members.append(ws)
    readers = [asyncio.create_task(drain(ws)) for ws in members]
    flooder = await dial(url)
    await join(flooder, "flood", "flooder")
    attacking(True)
    started = time.perf_counter()
    # Pipelined, 16 requests in flight (no more: past that the server stops
    # reading a paced sender, and its keepalive pongs would wait too).
    answered = 0
    for n in range(1000):
        await flooder.send(frame(10 + n, "sendMessage", text=f"flood {n}"))
        while n - answered >= 16:
            answered += "id" in json.loads(await flooder.recv())
    while answered < 1000:
        answered += "id" in json.loads(await flooder.recv())
    attacking(False)
    elapsed = time.perf_counter() - started
    await flooder.close()
    for ws in members:
        await ws.close()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return {"deliveries_per_s": round(1000 * 499 / elapsed), "flood_s": round(elapsed, 2)}


async def attack_ice(url: str) -> dict[str, Any]:
    """50 exchanges x 65 candidates of the largest size, held before the offer."""
    publisher = await dial(url)
    await join(publisher, "ice", "pub")
    await call(publisher, 2, "publish", audio=True, video=False)
    refused = 0
    subs = []
    for n in range(50):
        ws = await dial(url)
        await join(ws, "ice", f"sub{n}", participantType="viewer")
        subs.append(ws)
    reader = asyncio.create_task(drain(publisher))
    pid = None
    attacking(True)
    for ws in subs:
        if pid is None:
            state = await call(ws, 3, "getSessionState")
            pid = next(
                p["participantId"] for p in state["result"]["participants"] if p["name"] == "pub"
            )
        answer = await call(ws, 4, "subscribe", target=pid)
        exchange = answer["result"]["exchangeId"]
        for k in range(65):
            reply = await call(
                ws, 10 + k, "iceCandidate", exchangeId=exchange, candidate="c" * 1024
            )
            refused += "error" in reply
    attacking(False)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    for ws in subs:
        await ws.close()
    await publisher.close()
    return {"candidates_refused": refused, "candidates_sent": 50 * 65}


async def attack_idle(url: str) -> dict[str, Any]:
    """3,000 connections that never join (the server caps them at max_connections)."""
    opened, refused = [], 0
    attacking(True)
    for _ in range(3000):
        try:
            opened.append(await dial(url))
        except Exception:
            refused += 1
    closed = 0
    for ws in opened:  # join_timeout closes every one of them
        await drain(ws)
        closed += ws.close_code == 1008
    attacking(False)
    return {"refused_503": refused, "closed_by_join_timeout": closed}


async def attack_leave_pipelined(url: str) -> dict[str, Any]:
    """leave, then 40 pipelined pings: how long until the connection ends."""
    times = []
    attacking(True)
    for n in range(20):
        ws = await dial(url)
        await join(ws, "leave", f"l{n}")
        started = time.perf_counter()
        await ws.send(frame(2, "leave"))
        for k in range(40):
            await ws.send(frame(100 + k, "ping"))
        await drain(ws)
        await ws.wait_closed()
        times.append(time.perf_counter() - started)
    attacking(False)
    return {"close_after_leave_ms_max": round(max(times) * 1000, 1)}


async def attack_many_viewers(url: str) -> dict[str, Any]:
    """2,000 viewers joining one room, each then reading what follows."""
    members, readers = [], []
    attacking(True)
    started = time.perf_counter()
    for n in range(2000):
        ws = await dial(url)
        await join(ws, "big", f"v{n}", participantType="viewer")
        members.append(ws)
        readers.append(asyncio.create_task(drain(ws)))
    elapsed = time.perf_counter() - started
    attacking(False)
    for ws in members:
        await ws.close()
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return {"join_2000_s": round(elapsed, 1)}


async def attack_mass_expiry(url: str) -> dict[str, Any]:
    """2,000 viewers of one room drop at once: their seats expire together a second later."""
    members, readers = [], []
    for n in range(2000):
        ws = await dial(url)
        await join(ws, "expiring", f"v{n}", participantType="viewer")
        members.append(ws)
        readers.append(asyncio.create_task(drain(ws)))
    attacking(True)
    for ws in members:  # TCP dropped with no close frame: each seat waits resume_window (1 s)
        ws.transport.abort()
    await asyncio.sleep(4.0)  # the window, then the expiry of 2,000 seats (about 2M notices)
    attacking(False)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    return {"dropped": len(members)}


ATTACKS: dict[str, tuple[Callable[[str], Awaitable[dict[str, Any]]], dict[str, Any]]] = {
    "replay": (attack_replay, {"max_text_bytes": 60_000, "resume_window": 600}),
    "non_readers": (attack_non_readers, {"resume_window": 0}),
    "chat_flood": (attack_chat_flood, {}),
    "chat_flood_50k": (attack_chat_flood, {"max_fanout_per_second": 50_000}),
    "ice": (attack_ice, {}),
    "idle": (attack_idle, {"join_timeout": 10.0, "max_connections": 2000}),
    "leave_pipelined": (attack_leave_pipelined, {"close_timeout": 10.0}),
    "many_viewers": (attack_many_viewers, {}),
    "mass_expiry": (attack_mass_expiry, {}),
}


PHASE: Any = None  # set in the attacker process: a multiprocessing Event, set while attacking


def attacking(on: bool) -> None:
    """Mark the attack proper (after its setup): the good client's figures cover only it."""
    if PHASE is not None:
        (PHASE.set if on else PHASE.clear)()


def attacker_main(name: str, url: str, out: Any, phase: Any) -> None:
    global PHASE
    PHASE = phase
    result = asyncio.run(ATTACKS[name][0](url))
    out.put(result)


# --- the good client -----------------------------------------------------------------------


async def good_client(url: str, done: Callable[[], bool], phase: Any) -> list[float]:
    ws = await dial(url)
    await join(ws, "good", "good")
    rtts: list[float] = []
    n = 10
    while not done():
        n += 1
        during = phase.is_set()
        started = time.perf_counter()
        await call(ws, n, "ping")
        if during or phase.is_set():
            rtts.append(time.perf_counter() - started)
        await asyncio.sleep(0.005)
    await ws.close()
    return rtts


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_attack(name: str) -> dict[str, Any]:
    _, options = ATTACKS[name]
    options = {"close_timeout": 2.0, "resume_window": 1.0, **options}
    server = Server(**options)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    phase = context.Event()
    attacker = context.Process(target=attacker_main, args=(name, server.url, out, phase))
    started = time.perf_counter()
    attacker.start()
    loop = asyncio.get_running_loop()
    rtts = await good_client(server.url, lambda: not attacker.is_alive(), phase)
    await loop.run_in_executor(None, attacker.join)
    result: dict[str, Any] = out.get(timeout=5) if not out.empty() else {"error": "no result"}
    elapsed = time.perf_counter() - started
    # Seats left: wait for the server to settle (resume windows of the replay attack excepted).
    # The replay attack's seats wait out their long window on purpose: they are counted.
    deadline = time.monotonic() + 30
    stats = server.stats()
    expected = 41 if name == "replay" else 0
    while time.monotonic() < deadline and (stats["conns"] > 0 or stats["participants"] > expected):
        await asyncio.sleep(0.2)
        stats = server.stats()
    result.update(
        attack=name,
        seconds=round(elapsed, 1),
        rss_growth_mib=round((server.peak() - server.base_rss) / 2**20, 1),
        good_pings=len(rtts),
        good_p50_ms=round(statistics.median(rtts) * 1000, 2) if rtts else None,
        good_p99_ms=round(pct(rtts, 0.99) * 1000, 2) if rtts else None,
        seats_left=stats["participants"],
        conns_left=stats["conns"],
        replay_mib_held=round(stats["replayBytes"] / 2**20, 1),
    )
    server.close()
    return result


# --- join cost on the pure rooms -----------------------------------------------------------


def join_cost(members: int, probes: int = 20) -> dict[str, Any]:
    """The server's own work for one join into a room of ``members`` (pure Rooms, no sockets).

    The room is filled with seats in their resume window (joined, then
    disconnected: the fill fans out into replay buffers only, so 10,000
    members take seconds, not minutes). Each probe joins on a connection and
    leaves again; its time is split into the ``participantJoined`` fan-out to
    the N members (``Out.notify``), the serialisation of the result that lists
    them (``_join_result``, which builds it, and ``response_frame``, which
    encodes it), and the rest: what the join itself costs.
    """
    from roomsignal.protocol import JoinParams, JoinRequest, LeaveRequest
    from roomsignal.server import Rooms, ServerConfig, _rooms, _state

    rooms = Rooms(SECRET, ServerConfig(max_participants=0, resume_window=1e9))
    token = mint(SECRET, "room", ttl=86400)
    now = time.time()

    def request(name: str) -> JoinRequest:
        return JoinRequest(
            id=1, params=JoinParams(token=token, name=name, participant_type="viewer")
        )

    for n in range(members):
        rooms.handle(-1, request(f"m{n}"), now)
        rooms.disconnect(-1, now)
    spent = {"fanout": 0.0, "listing": 0.0}
    notify, respond, listing = _state.Out.notify, _rooms.response_frame, Rooms._join_result

    def timed_notify(self: Any, *args: Any) -> None:
        started = time.perf_counter()
        notify(self, *args)
        spent["fanout"] += time.perf_counter() - started

    def timed_respond(*args: Any) -> str:
        started = time.perf_counter()
        result = respond(*args)
        spent["listing"] += time.perf_counter() - started
        return result

    def timed_listing(self: Any, *args: Any, **kw: Any) -> Any:
        started = time.perf_counter()
        result = listing(self, *args, **kw)
        spent["listing"] += time.perf_counter() - started
        return result

    totals = []
    Rooms._join_result = timed_listing  # type: ignore[method-assign]
    _state.Out.notify = timed_notify  # type: ignore[method-assign]
    _rooms.response_frame = timed_respond  # type: ignore[assignment]
    try:
        for k in range(probes):
            spent["fanout"] = spent["listing"] = 0.0
            started = time.perf_counter()
            rooms.handle(1, request(f"probe{k}"), now)
            total = time.perf_counter() - started
            totals.append((total, spent["fanout"], spent["listing"]))
            rooms.handle(1, LeaveRequest(id=2), now)
    finally:
        _state.Out.notify = notify  # type: ignore[method-assign]
        _rooms.response_frame = respond
        Rooms._join_result = listing  # type: ignore[method-assign]
    total, fanout, listing = sorted(totals)[len(totals) // 2]
    return {
        "members": members,
        "join_ms": round(total * 1000, 2),
        "fanout_ms": round(fanout * 1000, 2),
        "listing_ms": round(listing * 1000, 2),
        "rest_us": round((total - fanout - listing) * 1e6, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="*", choices=[*ATTACKS, "join_cost"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.serve is not None:
        serve_main(json.loads(args.serve))
        return 0
    names = args.only or [*ATTACKS, "join_cost"]
    results = []
    for name in names:
        if name == "join_cost":
            small, large = join_cost(2000), join_cost(10_000)
            ratio = large["rest_us"] / small["rest_us"]
            results.append(
                {
                    "attack": "join_cost",
                    "at_2000": small,
                    "at_10000": large,
                    "rest_ratio": round(ratio, 2),
                }
            )
        else:
            results.append(asyncio.run(run_attack(name)))
        print(json.dumps(results[-1]) if args.json else results[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
