"""Where the client's time per event goes: a ladder from bare websockets to Session.

    python benchmarks/ladder.py [--against ref|stub] [--events 50000] [--reps 5]
    python benchmarks/ladder.py --ping [--pings 2000] [--reps 5]

Each rung is a bare websockets client that receives the same sessionError
burst from the same server process (as in run.py) and does a little more
of the client's work per frame, ending with the full ``Session``. The step
between two rungs is what that piece of work costs in a real receive loop
(with real batching, scheduling and GC), not in isolation. Rungs marked
"candidate" replace one piece with a cheaper alternative, to size a
suggested change before anyone makes it. Rungs run interleaved, ``--reps``
rounds; medians are printed, of the wall-clock rate and of the client's own
CPU time per event (``time.process_time``), which other processes on the
machine disturb much less than wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Opcode

from roomsignal.client._listeners import ListenerHub
from roomsignal.errors import make_error
from roomsignal.protocol import PingRequest, decode, encode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402
import workloads  # noqa: E402

Rung = Callable[[Any], Any]


def rungs(hub: ListenerHub) -> dict[str, tuple[bool, Rung | None]]:
    """name -> (recv decodes to str, per-frame work)."""

    def decode_only(frame: Any) -> Any:
        return decode(frame)

    def decode_error(frame: Any) -> Any:
        p = decode(frame).params  # type: ignore[union-attr]
        return make_error(p.code, p.message, p.data, session_id="s", participant_id="p")

    def decode_error_emit(frame: Any) -> None:
        p = decode(frame).params  # type: ignore[union-attr]
        hub.emit(
            "session_error",
            make_error(p.code, p.message, p.data, session_id="s", participant_id="p"),
        )

    return {
        "recv(decode=False), count": (False, None),
        "recv() -> str": (True, None),
        "+ decode(frame)": (True, decode_only),
        "+ make_error()": (True, decode_error),
        "+ hub.emit() to an async listener": (True, decode_error_emit),
        "candidate: recv(decode=False), same work": (False, decode_error_emit),
    }


class InlineConnection(ClientConnection):
    """A websockets connection that hands each complete text frame to ``on_text``
    from ``process_event``, inside ``data_received``, skipping the message
    assembler and ``recv()`` (a private websockets hook: a candidate only)."""

    on_text: Callable[[bytes], None] | None = None

    def process_event(self, event: Any) -> None:
        on_text = self.on_text
        if (
            on_text is not None
            and self.response is not None
            and event.opcode is Opcode.TEXT
            and event.fin
        ):
            on_text(event.data)
            return
        super().process_event(event)


async def inline_rungs(
    url: str, token: str, events: int, hub: ListenerHub, seen: _Seen
) -> dict[str, tuple[float, float]]:
    """Rungs that read frames in ``process_event`` (see ``InlineConnection``)."""
    out: dict[str, tuple[float, float]] = {}
    async with connect(
        url,
        compression=None,
        proxy=None,
        subprotocols=[workloads.SUBPROTOCOL],  # type: ignore[list-item]
        create_connection=InlineConnection,
    ) as ws:
        assert isinstance(ws, InlineConnection)
        await workloads.raw_join(ws, token, f"inline-{time.monotonic_ns()}")
        for name, full in (
            ("inline: process_event, count", False),
            ("inline: + str, decode, make_error, emit", True),
        ):
            got = 0
            done = asyncio.Event()

            def on_text(data: bytes, full: bool = full, done: asyncio.Event = done) -> None:
                nonlocal got
                if b'"sessionError"' in data:
                    got += 1
                    if full:
                        p = decode(data.decode()).params  # type: ignore[union-attr]
                        hub.emit(
                            "session_error",
                            make_error(
                                p.code, p.message, p.data, session_id="s", participant_id="p"
                            ),
                        )
                    elif got >= events:
                        done.set()

            ws.on_text = on_text
            target = seen if full else None
            if target is not None:
                target.count, target.target = 0, events
                target.done.clear()
            frame = workloads.request(
                next(_IDS),
                "simulateScenario",
                {"scenario": "sessionErrors", "code": workloads.ERROR_CODE, "count": events},
            )
            start, cpu = time.perf_counter(), time.process_time()
            await ws.send(frame)
            async with asyncio.timeout(60):
                await (target.done.wait() if target is not None else done.wait())
            out[name] = (
                events / (time.perf_counter() - start),
                (time.process_time() - cpu) / events * 1e6,
            )
            ws.on_text = None
    return out


_IDS = itertools.count(10**6)


class _Seen:
    """How many events the hub's listener got (the emit rungs wait for all)."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.done = asyncio.Event()


async def ladder(
    url: str, token: str, events: int, reps: int
) -> dict[str, list[tuple[float, float]]]:
    hub = ListenerHub()
    seen = _Seen()

    async def listener(_error: Any) -> None:
        seen.count += 1
        if seen.count >= seen.target:
            seen.done.set()

    hub.add("session_error", listener)
    steps = rungs(hub)
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in steps}
    rates["Session (full client)"] = []
    async with workloads.raw_connect(url) as ws:
        await workloads.raw_join(ws, token, f"ladder-{time.monotonic_ns()}")
        session_cls = workloads.session_class()
        async with session_cls(url, token=token, name=f"ladder-s-{time.monotonic_ns()}") as s:
            full = workloads.SessionEvents(s, None)
            next_id = 1000
            for round_ in range(reps + 1):  # round 0 warms up
                for name, (text, work) in steps.items():
                    next_id += 1
                    emits = "emit" in name
                    rate = await _burst(ws, next_id, events, text, work, seen if emits else None)
                    if round_:
                        rates[name].append(rate)
                rate, client_cpu, _ = await full.burst(events, 120)
                if round_:
                    cpu_us = client_cpu / rate * 1e6
                    rates["Session (full client)"].append((rate, cpu_us))
                for name, sample in (await inline_rungs(url, token, events, hub, seen)).items():
                    if round_:
                        rates.setdefault(name, []).append(sample)
    return rates


async def _burst(
    ws: Any, request_id: int, count: int, text: bool, work: Rung | None, seen: _Seen | None
) -> tuple[float, float]:
    """(events per second, client CPU microseconds per event) for one burst."""
    frame = workloads.request(
        request_id,
        "simulateScenario",
        {"scenario": "sessionErrors", "code": workloads.ERROR_CODE, "count": count},
    )
    got = 0
    mark: Any = '"sessionError"' if text else b'"sessionError"'
    if seen is not None:
        seen.count, seen.target = 0, count
        seen.done.clear()
    start, cpu = time.perf_counter(), time.process_time()
    await ws.send(frame)
    while got < count:
        message = await ws.recv(decode=text)
        if mark in message:
            got += 1
            if work is not None:
                work(message)
    if seen is not None:
        async with asyncio.timeout(60):
            await seen.done.wait()  # the listener drains what was emitted
    return count / (time.perf_counter() - start), (time.process_time() - cpu) / count * 1e6


# --- the ping path ------------------------------------------------------------------


class _Reader:
    """A reader task resolving futures by id, as the Session's reader does."""

    def __init__(self, ws: Any, parse: Callable[[Any], tuple[int, Any]]) -> None:
        self.ws = ws
        self.parse = parse
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        async for frame in self.ws:
            request_id, result = self.parse(frame)
            future = self.pending.pop(request_id, None)
            if future is not None:
                future.set_result(result)

    async def call(self, request_id: int, frame: str) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        await self.ws.send(frame)
        return await future

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def _json_parse(frame: Any) -> tuple[int, Any]:
    value = json.loads(frame)
    return value.get("id", -1), value.get("result")


def _codec_parse(frame: Any) -> tuple[int, Any]:
    message = decode(frame)
    return getattr(message, "id", -1), getattr(message, "result", None)


async def ping_ladder(
    url: str, token: str, pings: int, reps: int
) -> dict[str, list[tuple[float, float]]]:
    """(median wall us, client CPU us) per ping for each rung, ``reps`` interleaved rounds."""
    ids = itertools.count(10)
    out: dict[str, list[tuple[float, float]]] = {}

    def record(name: str, sample: tuple[float, float], round_: int) -> None:
        if round_:
            out.setdefault(name, []).append(sample)

    async with workloads.raw_connect(url) as ws:
        await workloads.raw_join(ws, token, f"pladder-{time.monotonic_ns()}")
        session_cls = workloads.session_class()
        async with session_cls(url, token=token, name=f"pladder-s-{time.monotonic_ns()}") as s:
            for round_ in range(reps + 1):  # round 0 warms up

                async def inline() -> None:
                    await ws.send(workloads.request(next(ids), "ping", {}))
                    await workloads.recv_response(ws)

                record("send + recv in the caller (bare)", await _times(inline, pings), round_)
                for name, parse, build in (
                    ("reader task + future, json frames", _json_parse, False),
                    ("... + decode() the response", _codec_parse, False),
                    ("... + encode(PingRequest(...))", _codec_parse, True),
                ):
                    reader = _Reader(ws, parse)

                    async def hop(reader: _Reader = reader, build: bool = build) -> None:
                        request_id = next(ids)
                        frame = (
                            encode(PingRequest(id=request_id))
                            if build
                            else workloads.request(request_id, "ping", {})
                        )
                        await reader.call(request_id, frame)

                    record(name, await _times(hop, pings), round_)
                    await reader.stop()
                record("Session.ping()", await _times(s.ping, pings), round_)
    return out


async def _times(call: Callable[[], Any], n: int) -> tuple[float, float]:
    """(median wall microseconds per call, client CPU microseconds per call)."""
    samples = []
    cpu = time.process_time()
    for _ in range(n):
        start = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples), (time.process_time() - cpu) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", choices=["ref", "stub"], default="ref")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--ping", action="store_true", help="the ping path instead")
    parser.add_argument("--pings", type=int, default=2000)
    args = parser.parse_args()
    from roomsignal.tokens import mint

    secret = "ladder-secret-ladder-secret-32by"
    token = mint(secret, "ladder-room", ttl=3600)
    pin = not args.no_pin and (run.os.cpu_count() or 1) >= 2
    if pin:
        run.os.sched_setaffinity(0, {0})
    with run.servers({"srv": (args.against, "--secret", secret)}, cpu=1 if pin else None) as srv:
        if args.ping:
            rtts = asyncio.run(ping_ladder(srv["srv"].url, token, args.pings, args.reps))
            width = max(len(name) for name in rtts)
            first = next(iter(rtts.values()))
            base = statistics.median(w for w, _ in first)
            base_cpu = statistics.median(c for _, c in first)
            print(
                f"{'rung':<{width}}  {'median us':>9}  {'vs bare':>7}  "
                f"{'client CPU us':>13}  {'vs bare':>7}"
            )
            for name, runs in rtts.items():
                us = statistics.median(w for w, _ in runs)
                cpu = statistics.median(c for _, c in runs)
                print(
                    f"{name:<{width}}  {us:>9.1f}  {us / base:>7.2f}  "
                    f"{cpu:>13.1f}  {cpu / base_cpu:>7.2f}"
                )
            return
        rates = asyncio.run(ladder(srv["srv"].url, token, args.events, args.reps))
    bare = rates["recv(decode=False), count"]
    base = statistics.median(rate for rate, _ in bare)
    base_cpu = statistics.median(cpu for _, cpu in bare)
    width = max(len(name) for name in rates)
    print(
        f"{'rung':<{width}}  {'events/s':>9}  {'vs bare':>7}  "
        f"{'client CPU us/event':>19}  {'vs bare':>7}"
    )
    for name, runs in rates.items():
        rate = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(
            f"{name:<{width}}  {rate:>9,.0f}  {rate / base:>7.2f}  "
            f"{cpu:>19.2f}  {base_cpu / cpu:>7.2f}"
        )


if __name__ == "__main__":
    main()
