"""Where the client's time per event goes: a ladder from bare websockets to Session.

    python benchmarks/ladder.py [--against ref|stub] [--events 50000] [--reps 5]

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
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from roomsignal.client._listeners import ListenerHub
from roomsignal.errors import make_error
from roomsignal.protocol import decode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import micro_event_path  # noqa: E402
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

    def fast_error_emit(frame: Any) -> None:
        p = micro_event_path.decode_fast(frame).params
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
        "candidate: ... + decode_fast()": (False, fast_error_emit),
    }


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", choices=["ref", "stub"], default="ref")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    from roomsignal.tokens import mint

    secret = "ladder-secret-ladder-secret-32by"
    token = mint(secret, "ladder-room", ttl=3600)
    pin = not args.no_pin and (run.os.cpu_count() or 1) >= 2
    if pin:
        run.os.sched_setaffinity(0, {0})
    with run.servers({"srv": (args.against, "--secret", secret)}, cpu=1 if pin else None) as srv:
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
