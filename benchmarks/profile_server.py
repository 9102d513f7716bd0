"""Profile the reference server's fan-out (or join) path, in its own process.

    python benchmarks/profile_server.py [--workload fanout|joins|pings]
                                        [--profiler pyinstrument|cprofile]
                                        [--members 500] [--messages 200] [--reps 5] [--top 30]

The server runs in a child process (this script, ``_server`` mode) that
profiles only between SIGUSR1 and SIGUSR2: this process joins the room
first (not profiled), then signals, drives the workload with the same
picows clients as ``server_bench.py``, and signals again; the child prints
its report on stdout when it stops. See docs/benchmarks.md for findings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import server_bench  # noqa: E402


class _NoProfiler:
    """``--profiler none``: server CPU time only (for the ``--cork`` experiment)."""

    def __init__(self) -> None:
        self.cpu = 0.0

    def start(self) -> None:
        self.cpu = time.process_time()

    def stop(self) -> None:
        self.cpu = time.process_time() - self.cpu


def _cork() -> None:
    """An experiment, not a change: write each connection's frames once per loop iteration.

    Replaces ``_Link.write`` in this (profiled) server process only, so that
    docs/benchmarks.md can say what coalescing writes would save. The server
    now does this itself (``server/_outbox.py``), so on the current server
    ``--cork`` measures nothing more; it is kept to reproduce the old figures.
    """
    from roomsignal.server import _transport

    original = _transport._Link.write
    pending: dict[Any, list[str]] = {}
    loop = asyncio.get_running_loop()
    scheduled = False

    def flush() -> None:
        nonlocal scheduled
        scheduled = False
        items = list(pending.items())
        pending.clear()
        for link, frames in items:
            original(link, frames)

    def write(self: Any, frames: Any) -> None:
        nonlocal scheduled
        pending.setdefault(self, []).extend(frames)
        if not scheduled:
            scheduled = True
            loop.call_soon(flush)

    _transport._Link.write = write  # type: ignore[method-assign]


async def _serve(args: argparse.Namespace) -> None:
    from roomsignal.server import SignalingServer

    profiler: Any = None
    if args.profiler == "cprofile":
        profiler = cProfile.Profile()
        profiler.start, profiler.stop = profiler.enable, profiler.disable
    elif args.profiler == "none":
        profiler = _NoProfiler()
    else:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
    if args.cork:
        _cork()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, profiler.start)
    stopped = asyncio.Event()

    def finish() -> None:
        profiler.stop()
        stopped.set()

    loop.add_signal_handler(signal.SIGUSR2, finish)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with SignalingServer(
        host="127.0.0.1", port=0, secret=args.secret, max_sessions=10_000, max_fanout_per_second=0
    ) as server:
        print(f"PORT {server.port}", flush=True)
        await stop.wait()
    if not stopped.is_set():
        return
    if args.profiler == "none":
        print(f"server CPU {profiler.cpu:.3f} s", flush=True)
    elif args.profiler == "cprofile":
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue(), flush=True)
    else:
        print(profiler.output_text(unicode=False, color=False, show_all=False), flush=True)


async def _drive(args: argparse.Namespace, url: str, child: subprocess.Popen[bytes]) -> str:
    from roomsignal.tokens import mint

    if args.workload == "fanout":
        token = mint(args.secret, "profile-fanout", ttl=3600)
        members = await server_bench._room(url, [token], args.members, 100)
        frames = [
            server_bench._request(100 + i, "sendMessage", {"text": server_bench.TEXT})
            for i in range(args.messages)
        ]
        await server_bench._burst(members, frames[:10])  # warm
        child.send_signal(signal.SIGUSR1)
        start = time.perf_counter()
        for _ in range(args.reps):
            await server_bench._burst(members, frames)
        seconds = time.perf_counter() - start
        child.send_signal(signal.SIGUSR2)
        delivered = args.reps * args.messages * (args.members - 1)
        summary = f"{delivered} notifications in {seconds:.2f} s (profiled)"
    elif args.workload == "pings":  # one joined client's round trips, one at a time
        import workloads

        token = mint(args.secret, "profile-pings", ttl=3600)
        async with workloads.raw_connect(url) as ws:
            await workloads.raw_join(ws, token, "pinger")
            for i in range(200):  # warm
                await ws.send(workloads.request(i + 10, "ping", {}))
                await workloads.recv_response(ws)
            child.send_signal(signal.SIGUSR1)
            start = time.perf_counter()
            for i in range(args.messages):
                await ws.send(workloads.request(i + 1000, "ping", {}))
                await workloads.recv_response(ws)
            seconds = time.perf_counter() - start
            child.send_signal(signal.SIGUSR2)
        return f"{args.messages} pings in {seconds:.2f} s (profiled)"
    else:
        tokens = [mint(args.secret, f"profile-joins-{r}", ttl=3600) for r in range(args.rooms)]
        child.send_signal(signal.SIGUSR1)
        start = time.perf_counter()
        members = await server_bench._room(url, tokens, args.joins // args.rooms, 100)
        seconds = time.perf_counter() - start
        child.send_signal(signal.SIGUSR2)
        summary = f"{len(members)} joins in {seconds:.2f} s (profiled)"
    for member in members:
        member.stop()
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="drive", choices=["drive", "_server"])
    parser.add_argument("--workload", choices=["fanout", "joins", "pings"], default="fanout")
    parser.add_argument(
        "--profiler", choices=["pyinstrument", "cprofile", "none"], default="pyinstrument"
    )
    parser.add_argument(
        "--cork", action="store_true", help="experiment: coalesce each connection's writes"
    )
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--joins", type=int, default=2000)
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--secret", default=secrets.token_hex(16))
    args = parser.parse_args()
    if args.mode == "_server":
        asyncio.run(_serve(args))
        return
    argv = [sys.executable, __file__, "_server", "--secret", args.secret]
    argv += ["--profiler", args.profiler, "--sort", args.sort, "--top", str(args.top)]
    argv += ["--cork"] if args.cork else []
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=HERE.parent)
    try:
        assert child.stdout is not None
        line = child.stdout.readline().decode().split()
        url = f"ws://127.0.0.1:{int(line[1])}"
        summary = asyncio.run(asyncio.wait_for(_drive(args, url, child), 600))
    finally:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)
    report, _ = child.communicate(timeout=120)
    print(summary)
    print(report.decode())
    sys.exit(0 if os.WEXITSTATUS(child.wait()) == 0 else 1)


if __name__ == "__main__":
    main()
