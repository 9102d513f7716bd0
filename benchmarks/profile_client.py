"""Profile the client's hot paths with cProfile: the sessionError event path and ``ping``.

    python benchmarks/profile_client.py [--against ref|stub] [--events N] [--pings N]
                                        [--sort tottime|cumtime] [--top 40] [--dump FILE]

The server runs in its own process (``servers.py``), as in ``run.py``; only
the client process is profiled. ``--against stub`` (the default) takes the
server out of the picture: it replays the reference server's frames as fast
as websockets can, so the profile shows the client's own cost per event.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402
import workloads  # noqa: E402


async def profiled(url: str, token: str, events: int, pings: int) -> dict[str, Any]:
    session_cls = workloads.session_class()
    if session_cls is None:
        raise SystemExit("roomsignal.Session is not importable")
    out: dict[str, Any] = {}
    async with session_cls(url, token=token, name=f"profile-{time.monotonic_ns()}") as session:
        full = workloads.SessionEvents(session, None)
        await full.burst(max(1000, events // 10), 60)  # warm-up, not profiled
        for _ in range(200):
            await session.ping()
        profiles = {}
        for name, work in (
            ("events", lambda: full.burst(events, 120)),
            ("ping", lambda: _pings(session, pings)),
        ):
            profiler = cProfile.Profile()
            profiler.enable()
            result = await work()
            profiler.disable()
            profiles[name] = profiler
            out[name] = result
    out["profiles"] = profiles
    return out


async def _pings(session: Any, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await session.ping()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", choices=["ref", "stub"], default="stub")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--pings", type=int, default=5_000)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--dump", default=None, help="write <dump>.events/.ping pstats files")
    args = parser.parse_args()

    from roomsignal.tokens import mint

    secret = "profile-secret-profile-secret-32b"
    token = mint(secret, "profile-room", ttl=3600)
    with run.servers({"srv": (args.against, "--secret", secret)}, cpu=None) as procs:
        out = asyncio.run(profiled(procs["srv"].url, token, args.events, args.pings))
    rate, _, _ = out["events"]
    print(f"events: {rate:,.0f}/s under cProfile ({args.events} events)")
    print(f"ping: {out['ping']:.1f} us per call under cProfile ({args.pings} calls)")
    for name, profiler in out["profiles"].items():
        if args.dump:
            profiler.dump_stats(f"{args.dump}.{name}")
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer)
        stats.sort_stats(args.sort).print_stats(args.top)
        print(f"\n=== {name} ===")
        print(buffer.getvalue())


if __name__ == "__main__":
    main()
