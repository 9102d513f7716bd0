"""Where a joined session's memory goes: ``tracemalloc`` over N sessions.

    python benchmarks/memory_client.py [--sessions 500] [--per-room 10] [--depth 1] [--top 35]

Joins one session and closes it (imports, first-use caches), then traces
while N sessions join the reference server (its own process, as in
``run.py``), ``per_room`` to a room, at most 100 joins in flight; prints the
traced bytes per session in all, then the largest differences grouped by
line (``--depth 1``) or by traceback (``--depth 6``). It prints; it does not
judge. RSS per session is ``run.py --only sessions``'s to measure.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import linecache
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402
import workloads  # noqa: E402


async def traced(url: str, secret: str, n: int, per_room: int, depth: int, top: int) -> None:
    from roomsignal.tokens import mint

    session_cls: Any = workloads.session_class()
    stamp = time.monotonic_ns()
    tokens = [mint(secret, f"mem-{stamp}-{room}", ttl=3600) for room in range(n // per_room + 1)]
    warm = session_cls(url, token=mint(secret, f"mem-{stamp}-warm", ttl=3600), name="warm")
    await warm.__aenter__()
    await warm.close()
    gc.collect()
    tracemalloc.start(depth)
    before = tracemalloc.take_snapshot()
    opened: list[Any] = []
    semaphore = asyncio.Semaphore(100)

    async def join(index: int) -> None:
        async with semaphore:
            session = session_cls(url, token=tokens[index // per_room], name=f"u{index}")
            await session.__aenter__()
            opened.append(session)

    try:
        async with asyncio.timeout(120):
            await asyncio.gather(*(join(i) for i in range(n)))
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        stats = after.compare_to(before, "traceback" if depth > 1 else "lineno")
        total = sum(stat.size_diff for stat in stats)
        print(f"{len(opened)} sessions; traced per session: {total / n / 1024:.2f} KiB")
        for stat in stats[:top]:
            frame = stat.traceback[0]
            where = frame.filename.split("site-packages/")[-1]
            line = linecache.getline(frame.filename, frame.lineno).strip()[:70]
            print(
                f"{stat.size_diff / n:8.0f} B {stat.count_diff / n:5.1f} blocks  {where}:{frame.lineno}  {line}"
            )
            if depth > 1:
                for text in stat.traceback.format()[:-2]:
                    print("        " + text)
    finally:
        await asyncio.gather(*(session.close() for session in opened))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--per-room", type=int, default=10)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    secret = "memory-secret-memory-secret-32byte"
    with run.servers({"srv": ("ref", "--secret", secret)}, cpu=None) as procs:
        asyncio.run(
            traced(procs["srv"].url, secret, args.sessions, args.per_room, args.depth, args.top)
        )


if __name__ == "__main__":
    main()
