"""Client-side measurements: each function drives one workload and returns numbers.

Run by ``run.py`` in its own (client) process; the servers live in other
processes (``servers.py``). The ``sessions`` workload runs in a fresh process
of its own, so that its RSS growth is not blurred by earlier workloads:

    python benchmarks/workloads.py sessions --url ws://127.0.0.1:PORT --secret S --n 5000

prints one JSON object on its last stdout line.

Every loop here is bounded in count and in time, and only dials 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

SUBPROTOCOL = "roomsignal.v1"
STAMP_FIELD = "benchSentNs"
ERROR_CODE = 206  # SESSION_IS_FULL_ERROR_CODE: any catalog code would do
MARK = b'"sessionError"'
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes() -> int:
    """This process's resident set size, from /proc/self/statm."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank on the sorted samples."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def proc_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by process ``pid``; 0 if unknown."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


class CpuMeter:
    """Wall time, and the CPU share of this process and of the server, over a span."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        self.server = proc_cpu_s(server_pid)

    def stop(self) -> tuple[float, float, float]:
        """(wall seconds, client CPU share, server CPU share)."""
        wall = time.perf_counter() - self.wall
        client = (time.process_time() - self.cpu) / wall
        server = (proc_cpu_s(self.server_pid) - self.server) / wall
        return wall, client, server


def raw_connect(url: str) -> Any:
    """A bare websockets client, as a careful user would open one."""
    return connect(url, compression=None, proxy=None, subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]


def request(request_id: int, method: str, params: dict[str, Any]) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})


async def raw_join(ws: ClientConnection, token: str, name: str) -> dict[str, Any]:
    """Join with a hand-written JSON-RPC frame; the result, or raise."""
    await ws.send(request(1, "join", {"token": token, "name": name, "participantType": "full"}))
    while True:
        reply = json.loads(await ws.recv())
        if reply.get("id") == 1:
            break
    if "result" not in reply:
        raise RuntimeError(f"raw join failed: {reply}")
    result: dict[str, Any] = reply["result"]
    return result


async def recv_response(ws: ClientConnection) -> Any:
    """The next response frame, skipping notifications (e.g. ``participantJoined``).

    Requests are sequential here, so the next response is the one awaited.
    """
    while True:
        frame = await ws.recv()
        if isinstance(frame, str) and frame.startswith('{"jsonrpc":"2.0","id"'):
            return frame
        if '"method"' not in frame:
            return frame


def session_class() -> Any:
    """``roomsignal.Session``, or None while the client is not there yet."""
    try:
        from roomsignal import Session
    except ImportError:
        try:
            from roomsignal.client import Session
        except ImportError:
            return None
    return Session


# --- events: sessionError streams ---------------------------------------------


class RawEvents:
    """A bare websockets client that asks for bursts and counts the frames."""

    def __init__(self, ws: ClientConnection, server_pid: int | None) -> None:
        self.ws = ws
        self.next_id = 100
        self.server_pid = server_pid

    async def burst(self, count: int) -> tuple[float, float, float]:
        """(events per second, client CPU share, server CPU share) for one burst."""
        self.next_id += 1
        frame = request(
            self.next_id,
            "simulateScenario",
            {"scenario": "sessionErrors", "code": ERROR_CODE, "count": count},
        )
        recv = self.ws.recv
        seen = 0
        first = last = b""
        meter = CpuMeter(self.server_pid)
        await self.ws.send(frame)
        while seen < count:
            message = await recv(decode=False)
            if MARK in message:
                seen += 1
                if seen == 1:
                    first = message
                last = message
        elapsed, client_cpu, server_cpu = meter.stop()
        gap = json.loads(last)["params"]["seq"] - json.loads(first)["params"]["seq"]
        if gap != count - 1:
            raise RuntimeError(f"raw client saw seq gap {gap} for {count} events")
        return count / elapsed, client_cpu, server_cpu


@dataclass
class _Counter:
    target: int = 0
    seen: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


class SessionEvents:
    """The full client: an async ``on_session_error`` listener counts the errors."""

    def __init__(self, session: Any, server_pid: int | None) -> None:
        self.session = session
        self.server_pid = server_pid
        self.counter = _Counter()
        counter = self.counter

        async def on_error(error: Any) -> None:
            if error.code == ERROR_CODE:
                counter.seen += 1
                if counter.seen >= counter.target:
                    counter.done.set()

        session.on_session_error(on_error)

    async def burst(self, count: int, timeout: float) -> tuple[float, float, float]:
        counter = self.counter
        counter.target, counter.seen = count, 0
        counter.done.clear()
        meter = CpuMeter(self.server_pid)
        await self.session.simulate_scenario("sessionErrors", code=ERROR_CODE, count=count)
        async with asyncio.timeout(timeout):
            await counter.done.wait()
        elapsed, client_cpu, server_cpu = meter.stop()
        return count / elapsed, client_cpu, server_cpu


async def events(
    url: str,
    token: str,
    count: int,
    reps: int,
    timeout: float,
    *,
    server_pid: int | None = None,
    with_session: bool = True,
    socketio: tuple[str, int, int | None] | None = None,
) -> dict[str, Any]:
    """Interleaved bursts, bare websockets then the full client, ``reps`` times each.

    With ``socketio`` (its server's URL, a burst's count, its pid), a
    python-socketio burst follows each pair, so that the three clients meet
    the same spells of a shared machine. One warm-up burst each first (not
    counted). The best rate of the runs is reported (and the median), with
    the medians of the CPU share of client and server over each burst and
    of the client's CPU time per event.
    """
    session_cls = session_class() if with_session else None
    raw_runs: list[tuple[float, float, float]] = []
    full_runs: list[tuple[float, float, float]] = []
    sio_runs: list[tuple[float, float, float]] = []
    warm = max(1000, count // 10)
    async with contextlib.AsyncExitStack() as stack:
        ws = await stack.enter_async_context(raw_connect(url))
        await raw_join(ws, token, f"raw-{os.getpid()}-{time.monotonic_ns()}")
        raw = RawEvents(ws, server_pid)
        full = None
        if session_cls is not None:
            session = session_cls(
                url, token=token, name=f"full-{os.getpid()}-{time.monotonic_ns()}"
            )
            await stack.enter_async_context(session)
            full = SessionEvents(session, server_pid)
        sio = None
        if socketio is not None:
            sio_url, sio_count, sio_pid = socketio
            sio = await stack.enter_async_context(socketio_client(sio_url, sio_pid))
        async with asyncio.timeout(timeout * (3 * reps + 3)):
            await raw.burst(warm)
            if full is not None:
                await full.burst(warm, timeout)
            if sio is not None:
                await sio.burst(max(500, sio_count // 10), timeout)
            for _ in range(reps):
                raw_runs.append(await raw.burst(count))
                if full is not None:
                    full_runs.append(await full.burst(count, timeout))
                if sio is not None:
                    sio_runs.append(await sio.burst(sio_count, timeout))
    out = _runs_summary("raw_", raw_runs)
    if full_runs:
        out.update(_runs_summary("", full_runs))
    if sio_runs:
        out.update(_runs_summary("socketio_", sio_runs))
    return out


def _runs_summary(prefix: str, runs: list[tuple[float, float, float]]) -> dict[str, Any]:
    rates = [rate for rate, _, _ in runs]
    return {
        # Best of the runs: other processes on the machine only ever slow a run down.
        f"{prefix}events_per_s": max(rates),
        f"{prefix}events_per_s_median": statistics.median(rates),
        f"{prefix}events_runs": [round(rate) for rate in rates],
        f"{prefix}events_client_cpu": round(statistics.median(c for _, c, _ in runs), 3),
        f"{prefix}events_server_cpu": round(statistics.median(s for _, _, s in runs), 3),
        f"{prefix}events_client_cpu_us": round(
            statistics.median(c / r * 1e6 for r, c, _ in runs), 2
        ),
    }


class SocketioEvents:
    """python-socketio's AsyncClient with an async handler, counting the same stream."""

    def __init__(self, client: Any, server_pid: int | None) -> None:
        self.client = client
        self.server_pid = server_pid
        self.counter = _Counter()
        counter = self.counter

        @client.on("sessionError")  # type: ignore[untyped-decorator]
        async def on_error(data: dict[str, Any]) -> None:
            if data["code"] == ERROR_CODE:
                counter.seen += 1
                if counter.seen >= counter.target:
                    counter.done.set()

    async def burst(self, count: int, timeout: float) -> tuple[float, float, float]:
        counter = self.counter
        counter.target, counter.seen = count, 0
        counter.done.clear()
        meter = CpuMeter(self.server_pid)
        await self.client.emit("simulateScenario", {"code": ERROR_CODE, "count": count})
        async with asyncio.timeout(timeout):
            await counter.done.wait()
        elapsed, client_cpu, server_cpu = meter.stop()
        return count / elapsed, client_cpu, server_cpu


@contextlib.asynccontextmanager
async def socketio_client(url: str, server_pid: int | None) -> AsyncIterator[SocketioEvents]:
    """A connected python-socketio client over websocket, disconnected on exit."""
    import socketio

    client = socketio.AsyncClient(reconnection=False)
    events = SocketioEvents(client, server_pid)
    await client.connect(url, transports=["websocket"], wait_timeout=10)
    try:
        yield events
    finally:
        await client.disconnect()


async def socketio_events(
    url: str, count: int, reps: int, timeout: float, *, server_pid: int | None = None
) -> dict[str, Any]:
    """The same stream through python-socketio alone (``events`` interleaves it when given)."""
    async with socketio_client(url, server_pid) as sio:
        await sio.burst(max(500, count // 10), timeout)
        runs = [await sio.burst(count, timeout) for _ in range(reps)]
    return _runs_summary("socketio_", runs)


# --- round trips ----------------------------------------------------------------


async def _timed(call: Callable[[], Awaitable[Any]], n: int, warm: int) -> list[float]:
    """Microseconds per call, ``n`` calls after ``warm`` unmeasured ones."""
    for _ in range(warm):
        await call()
    samples: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        await call()
        samples.append((clock() - start) / 1000)
    return samples


def _summary(prefix: str, samples: list[float]) -> dict[str, float]:
    return {
        f"{prefix}_us": statistics.median(samples),
        f"{prefix}_mean_us": statistics.fmean(samples),
        f"{prefix}_p99_us": percentile(samples, 99),
    }


ROUNDS = 50  # round trips and latencies alternate between clients in this many rounds


async def rtt(
    echo_url: str, ref_url: str, token: str, n: int, timeout: float, *, with_session: bool = True
) -> dict[str, Any]:
    """Round trips: bare websockets vs echo, bare websockets vs reference ``ping``, Session.ping.

    The three clients alternate, ``n / ROUNDS`` calls each per round, so
    that a disturbance of the machine falls on all of them alike.
    """
    out: dict[str, Any] = {}
    warm = max(100, n // 10)
    per_round = max(1, n // ROUNDS)
    samples: dict[str, list[float]] = {"raw_rtt": [], "raw_ref_rtt": [], "rtt": []}
    async with asyncio.timeout(timeout), contextlib.AsyncExitStack() as stack:
        echo_ws = await stack.enter_async_context(raw_connect(echo_url))
        frame = request(1, "ping", {})

        async def echo() -> None:
            await echo_ws.send(frame)
            await echo_ws.recv()

        ref_ws = await stack.enter_async_context(raw_connect(ref_url))
        await raw_join(ref_ws, token, f"rawping-{os.getpid()}-{time.monotonic_ns()}")
        ids = iter(range(10, 10**9))

        async def raw_ping() -> None:
            await ref_ws.send(request(next(ids), "ping", {}))
            await recv_response(ref_ws)

        calls: dict[str, Callable[[], Awaitable[Any]]] = {"raw_rtt": echo, "raw_ref_rtt": raw_ping}
        session_cls = session_class() if with_session else None
        if session_cls is not None:
            name = f"ping-{os.getpid()}-{time.monotonic_ns()}"
            session = await stack.enter_async_context(session_cls(ref_url, token=token, name=name))
            calls["rtt"] = session.ping
        for call in calls.values():
            await _timed(call, 0, warm)
        for _ in range(ROUNDS):
            for key, call in calls.items():
                samples[key].extend(await _timed(call, per_round, 0))
    for key, values in samples.items():
        if values:
            out.update(_summary(key, values))
    return out


# --- error latency ------------------------------------------------------------------


async def error_latency(
    url: str, token: str, n: int, timeout: float, *, with_session: bool = True
) -> dict[str, Any]:
    """Server write -> listener call, one error at a time, against a ``--stamp`` server.

    The server stamps each sessionError with ``time.monotonic_ns()`` as
    websockets frames it for writing; the listener (or the bare client, after
    ``recv``) reads ``time.monotonic_ns()`` on being called. Both processes
    read the same CLOCK_MONOTONIC, so the difference is the one-way latency.
    The bare client and the Session alternate, ``n / ROUNDS`` samples each
    per round.
    """
    out: dict[str, Any] = {}
    clock = time.monotonic_ns
    warm = max(50, n // 10)
    per_round = max(1, n // ROUNDS)
    raw_samples: list[float] = []
    samples: list[float] = []
    async with asyncio.timeout(timeout), contextlib.AsyncExitStack() as stack:
        ws = await stack.enter_async_context(raw_connect(url))
        await raw_join(ws, token, f"rawlat-{os.getpid()}-{time.monotonic_ns()}")
        frame_ids = iter(range(100, 10**9))

        async def raw_one(keep: bool) -> None:
            await ws.send(
                request(
                    next(frame_ids),
                    "simulateScenario",
                    {"scenario": "sessionErrors", "code": ERROR_CODE, "count": 1},
                )
            )
            while True:
                message = await ws.recv(decode=False)
                now = clock()
                if MARK in message:
                    break
            if keep:
                sent = json.loads(message)["params"]["data"][STAMP_FIELD]
                raw_samples.append((now - sent) / 1000)

        session = None
        session_cls = session_class() if with_session else None
        arrived = asyncio.Event()
        keeping = [False]
        if session_cls is not None:
            name = f"lat-{os.getpid()}-{time.monotonic_ns()}"
            session = await stack.enter_async_context(session_cls(url, token=token, name=name))

            @session.on_session_error  # type: ignore[untyped-decorator]
            async def on_error(error: Any) -> None:
                now = clock()
                sent = error.data.get(STAMP_FIELD)
                if sent is not None:
                    if keeping[0]:
                        samples.append((now - sent) / 1000)
                    arrived.set()

        async def session_one(keep: bool) -> None:
            assert session is not None
            keeping[0] = keep
            arrived.clear()
            await session.simulate_scenario("sessionErrors", code=ERROR_CODE, count=1)
            await arrived.wait()

        for _ in range(warm):
            await raw_one(False)
            if session is not None:
                await session_one(False)
        for _ in range(ROUNDS):
            for _ in range(per_round):
                await raw_one(True)
            if session is not None:
                for _ in range(per_round):
                    await session_one(True)
    out["raw_error_latency_p50_us"] = percentile(raw_samples, 50)
    out["raw_error_latency_p99_us"] = percentile(raw_samples, 99)
    if samples:
        out["error_latency_p50_us"] = percentile(samples, 50)
        out["error_latency_p99_us"] = percentile(samples, 99)
        out["error_latency_mean_us"] = statistics.fmean(samples)
    return out


# --- many sessions (run in a fresh process) -------------------------------------


async def _gather_bounded(
    items: list[Any], work: Callable[[Any], Awaitable[Any]], concurrency: int
) -> list[BaseException | None]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> BaseException | None:
        async with semaphore:
            try:
                await work(item)
            except Exception as exc:
                return exc
            return None

    return await asyncio.gather(*(one(item) for item in items))


def _settled_rss() -> int:
    gc.collect()
    gc.collect()
    return rss_bytes()


async def many_sessions(
    url: str, secret: str, n: int, per_room: int, concurrency: int, timeout: float, raw: bool
) -> dict[str, Any]:
    """Join ``n`` sessions (``per_room`` to a room) at most ``concurrency`` at a time.

    Reports the wall time to join them all and the RSS growth per joined
    session, after ``gc.collect()``; one session is joined and closed first
    so that imports and first-use caches are not counted. ``raw`` uses bare
    websockets connections and hand-written ``join`` frames instead (the
    floor under the client's figures).
    """
    from roomsignal.tokens import mint

    rooms = (n + per_room - 1) // per_room
    run = time.monotonic_ns()
    tokens = [mint(secret, f"bench-{run}-{room}", ttl=3600) for room in range(rooms)]
    session_cls = None if raw else session_class()
    if session_cls is None and not raw:
        return {"error": "roomsignal.Session is not available"}

    if raw:

        async def open_one(index: int) -> Any:
            ws = await raw_connect(url)
            try:
                await raw_join(ws, tokens[index // per_room], f"u{index}")
            except BaseException:
                await ws.close()
                raise
            return ws

        async def close_one(ws: Any) -> None:
            await ws.close()

    else:

        async def open_one(index: int) -> Any:
            session = session_cls(url, token=tokens[index // per_room], name=f"u{index}")
            await session.__aenter__()
            return session

        async def close_one(session: Any) -> None:
            await session.close()

    warm_token = mint(secret, f"bench-{run}-warm", ttl=3600)
    warm_ws = await (raw_connect(url) if raw else _warm_session(session_cls, url, warm_token))
    if raw:
        await raw_join(warm_ws, warm_token, "warm")
    await close_one(warm_ws)

    opened: list[Any] = []

    async def join(index: int) -> None:
        opened.append(await open_one(index))

    before = _settled_rss()
    start = time.perf_counter()
    async with asyncio.timeout(timeout):
        errors = await _gather_bounded(list(range(n)), join, concurrency)
    join_s = time.perf_counter() - start
    after = _settled_rss()
    failures = [repr(exc) for exc in errors if exc is not None]
    joined = len(opened)
    start = time.perf_counter()
    async with asyncio.timeout(timeout):
        await _gather_bounded(opened, close_one, concurrency)
    close_s = time.perf_counter() - start
    return {
        "sessions": joined,
        "requested": n,
        "join_s": join_s,
        "close_s": close_s,
        "kib_per_session": (after - before) / 1024 / max(joined, 1),
        "rss_before_mib": before / 2**20,
        "rss_after_mib": after / 2**20,
        "failures": len(failures),
        "first_failures": failures[:3],
    }


async def _warm_session(session_cls: Any, url: str, token: str) -> Any:
    session = session_cls(url, token=token, name="warm")
    await session.__aenter__()
    return session


def main() -> None:
    parser = argparse.ArgumentParser(description="one workload in a fresh process")
    parser.add_argument("workload", choices=["sessions"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--per-room", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    if not args.url.startswith("ws://127.0.0.1:"):
        sys.exit("workloads.py only dials 127.0.0.1")
    if args.cpu is not None:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, {args.cpu})
    result = asyncio.run(
        many_sessions(
            args.url,
            args.secret,
            args.n,
            args.per_room,
            args.concurrency,
            args.timeout,
            args.raw,
        )
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
