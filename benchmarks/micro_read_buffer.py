"""The transport's read size: asyncio reads up to 256 KiB per ``recv`` by default.

    python benchmarks/micro_read_buffer.py [--pings 2000] [--latency 1000] [--rounds 5]

asyncio's selector transport calls ``sock.recv(self.max_size)`` with
``max_size = 256 KiB`` and then shrinks the bytes object to what arrived.
glibc serves a 256 KiB request with ``mmap`` (above its 128 KiB default
threshold), and the shrink and free cost an ``mremap`` and a ``munmap``:
three system calls and a page fault for every read of a few hundred bytes.
Whether that happens depends on the process's malloc history (glibc raises
the threshold after freeing a large mapped block); ``strace -c`` of a
``Session.ping()`` loop shows it happening once per ping here, and not in the
bare websockets client. This script compares, in the same process and
against the same reference server process (``--stamp``), a default
``Session`` and one whose transport reads at most 64 KiB
(``session._ws.transport.max_size = 65536``, the candidate change), in
alternating rounds: ``ping()`` round trips, and the one-way latency of a
single ``sessionError`` (server write to listener), as in ``run.py``; a bare
websockets client takes part too, as the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402
import workloads  # noqa: E402

CANDIDATE_READ_SIZE = 64 * 1024


async def compare(url: str, token: str, pings: int, latency: int, rounds: int) -> None:
    session_cls = workloads.session_class()
    if session_cls is None:
        raise SystemExit("roomsignal.Session is not importable")
    results: dict[str, dict[str, list[float]]] = {}
    async with (
        contextlib.AsyncExitStack() as stack,
        session_cls(url, token=token, name=f"rb-default-{time.monotonic_ns()}") as default,
        session_cls(url, token=token, name=f"rb-64k-{time.monotonic_ns()}") as small,
    ):
        small._ws.transport.max_size = CANDIDATE_READ_SIZE
        variants: dict[str, Any] = {"default (256 KiB reads)": default, "64 KiB reads": small}
        arrivals: dict[str, tuple[asyncio.Event, list[float]]] = {}
        for label, session in variants.items():
            arrived, samples = asyncio.Event(), []
            arrivals[label] = (arrived, samples)

            def on_error(error: Any, arrived: asyncio.Event = arrived, out: list[float] = samples):
                now = time.monotonic_ns()
                sent = error.data.get(workloads.STAMP_FIELD)
                if sent is not None:
                    out.append((now - sent) / 1000)
                    arrived.set()

            session.on_session_error(on_error)
            results[label] = {"ping": [], "latency": []}
            for _ in range(200):
                await session.ping()
        raw = await stack.enter_async_context(workloads.raw_connect(url))
        await workloads.raw_join(raw, token, f"rb-raw-{time.monotonic_ns()}")
        results["bare websockets"] = {"ping": [], "latency": []}
        ids = iter(range(10, 10**9))
        for _ in range(rounds):
            for _ in range(pings // rounds):
                start = time.perf_counter_ns()
                await raw.send(workloads.request(next(ids), "ping", {}))
                await workloads.recv_response(raw)
                results["bare websockets"]["ping"].append((time.perf_counter_ns() - start) / 1000)
            for _ in range(latency // rounds):
                await raw.send(
                    workloads.request(
                        next(ids),
                        "simulateScenario",
                        {"scenario": "sessionErrors", "code": workloads.ERROR_CODE, "count": 1},
                    )
                )
                while True:
                    message = await raw.recv(decode=False)
                    now = time.monotonic_ns()
                    if workloads.MARK in message:
                        break
                sent = json.loads(message)["params"]["data"][workloads.STAMP_FIELD]
                results["bare websockets"]["latency"].append((now - sent) / 1000)
            for label, session in variants.items():
                for _ in range(pings // rounds):
                    start = time.perf_counter_ns()
                    await session.ping()
                    results[label]["ping"].append((time.perf_counter_ns() - start) / 1000)
                arrived, samples = arrivals[label]
                for _ in range(latency // rounds):
                    arrived.clear()
                    await session.simulate_scenario(
                        "sessionErrors", code=workloads.ERROR_CODE, count=1
                    )
                    await arrived.wait()
        for label, (_, samples) in arrivals.items():
            results[label]["latency"] = samples
    print(f"{'variant':<24}  {'ping p50 us':>11}  {'latency p50 us':>14}  {'latency p99 us':>14}")
    for label, values in results.items():
        lat = values["latency"]
        print(
            f"{label:<24}  {statistics.median(values['ping']):>11.1f}  "
            f"{workloads.percentile(lat, 50):>14.1f}  {workloads.percentile(lat, 99):>14.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--latency", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from roomsignal.tokens import mint

    secret = "read-buffer-secret-read-buffer-32"
    token = mint(secret, "read-buffer-room", ttl=3600)
    pin = (run.os.cpu_count() or 1) >= 2
    if pin:
        run.os.sched_setaffinity(0, {0})
    spec = {"ref": ("ref", "--secret", secret, "--stamp")}
    with run.servers(spec, cpu=1 if pin else None) as procs:
        asyncio.run(compare(procs["ref"].url, token, args.pings, args.latency, args.rounds))


if __name__ == "__main__":
    main()
