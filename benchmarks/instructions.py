"""Instructions per event on the client's paths, counted by valgrind: deterministic A/B.

    python benchmarks/instructions.py                      # every workload, this tree
    python benchmarks/instructions.py --tree /tmp/base/src # another tree (git archive REV src)
    python benchmarks/instructions.py --only datapath --events 20000

Timings on a shared 2-core VM swing by 30 % between runs, which hides a
change worth 5 %. Instruction counts do not swing: each workload runs twice
under ``valgrind --tool=cachegrind --cache-sim=no`` with ``PYTHONHASHSEED=0``,
once handling N events and once with the same setup and nothing handled,
and the difference over N is the cost of one event, to a few instructions.
(It is not time: a cache miss costs more than an add. Use it to compare two
trees, and ``run.py`` for rates.) The garbage collector is off while
counting: what it costs depends on the whole heap (see docs/benchmarks.md,
"the third pass").

Workloads, all in process (no socket, no server process):

- ``datapath``: a ``Session`` joined to an embedded server; one read's worth
  of ``sessionError`` frames handed to its connection's ``data_received``
  (1 400 at a time, as one 256 KiB read holds), to an async listener;
- ``errors``, ``responses``, ``messages``: ``Session._on_frames`` with batches
  of frames of that kind and no listener (the core and the hub only);
- ``split``: the frame splitter alone, in batches.

Needs valgrind (Debian: ``apt-get install valgrind``); prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKLOADS = ("datapath", "errors", "responses", "messages", "split")
PER_READ = 1400


def _frames(kind: str, n: int) -> list[bytes]:
    def note(method: str, params: dict[str, Any]) -> bytes:
        message = {"jsonrpc": "2.0", "method": method, "params": params}
        return json.dumps(message, separators=(",", ":")).encode()

    if kind == "responses":
        answer = {"jsonrpc": "2.0", "id": 1, "result": {"serverTime": 1.0}}
        return [json.dumps(answer, separators=(",", ":")).encode()] * n
    if kind == "messages":
        return [
            note("messageReceived", {"seq": s, "from": "p-1", "text": "hi there", "private": False})
            for s in range(1, n + 1)
        ]
    data = {"name": "SESSION_IS_FULL_ERROR_CODE"}
    return [
        note("sessionError", {"seq": s, "code": 206, "message": "full", "data": data})
        for s in range(1, n + 1)
    ]


def _wire(payload: bytes) -> bytes:
    size = len(payload)
    head = bytes([0x81, 126]) + size.to_bytes(2) if size >= 126 else bytes([0x81, size])
    return head + payload


def _turns(items: list[bytes]) -> list[list[bytes]]:
    from roomsignal.client._connection import FRAMES_PER_BATCH

    return [items[i : i + FRAMES_PER_BATCH] for i in range(0, len(items), FRAMES_PER_BATCH)]


def _work_frames(kind: str, n: int, run: bool) -> None:
    from roomsignal import Session

    session = Session("ws://127.0.0.1:1", token="t", name="count")
    batches = _turns(_frames(kind, n))
    on_frames = session._on_frames
    gc.disable()
    if run:
        for batch in batches:
            on_frames(batch, 0)


def _work_split(n: int, run: bool) -> None:
    from roomsignal.client._connection import FRAMES_PER_BATCH, FrameSplitter

    stream = b"".join(_wire(frame) for frame in _frames("errors", n))
    reads = [stream[i : i + 262_144] for i in range(0, len(stream), 262_144)]
    splitter = FrameSplitter(1 << 20)
    splitter.handshake_done = True
    gc.disable()
    if run:
        for data in reads:
            items = splitter.feed(data, FRAMES_PER_BATCH)
            while len(items) >= FRAMES_PER_BATCH:
                items = splitter.feed(b"", FRAMES_PER_BATCH)


async def _work_datapath(n: int, run: bool) -> None:
    from roomsignal import Session, SessionError
    from roomsignal.server import SignalingServer
    from roomsignal.tokens import mint

    secret = "instructions-secret-0123456789abcdef"
    async with SignalingServer(secret=secret) as server:
        session = Session(server.url, token=mint(secret, "count", ttl=600), name="count")
        async with session:
            ws = session._ws
            assert ws is not None
            seen = 0
            done = asyncio.Event()

            async def on_error(error: SessionError) -> None:
                nonlocal seen
                if error.code == 206:
                    seen += 1
                    if seen >= n:
                        done.set()

            session.on_session_error(on_error)
            first = session._core.last_seq + 1
            payloads = [_wire(frame) for frame in _frames("errors", n + first)[first - 1 :]]
            reads = [
                b"".join(payloads[i : i + PER_READ]) for i in range(0, len(payloads), PER_READ)
            ]
            gc.disable()
            if run:
                for data in reads:
                    ws.data_received(data)
                    while ws._next_batch is not None:  # noqa: ASYNC110 - its batches, one per loop iteration
                        await asyncio.sleep(0)
                await asyncio.wait_for(done.wait(), 600)
            gc.enable()


def worker(workload: str, n: int, run: bool) -> None:
    """One counted run (under valgrind): ``n`` events handled, or none when not ``run``."""
    if workload == "datapath":
        asyncio.run(_work_datapath(n, run))
    elif workload == "split":
        _work_split(n, run)
    else:
        _work_frames(workload, n, run)


def _instructions(tree: str | None, workload: str, n: int, run: bool) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if tree:
        env["PYTHONPATH"] = tree
    argv = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        workload,
        str(n),
        "run" if run else "skip",
    ]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800, check=False)
    match = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"{workload} under valgrind failed: {proc.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", help="a src directory to count instead of this one")
    parser.add_argument("--only", help="comma-separated subset of " + ",".join(WORKLOADS))
    parser.add_argument("--events", type=int, default=14_000)
    parser.add_argument("--worker", nargs=3, metavar=("WORKLOAD", "N", "MODE"), help="internal")
    args = parser.parse_args(argv)
    if args.worker:
        workload, n, mode = args.worker
        worker(workload, int(n), mode == "run")
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    chosen = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = set(chosen) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {"tree": args.tree or str(HERE.parent / "src"), "events": args.events}
    for workload in chosen:
        ran = _instructions(args.tree, workload, args.events, True)
        idle = _instructions(args.tree, workload, args.events, False)
        out[f"{workload}_instructions_per_event"] = round((ran - idle) / args.events)
        print(f"{workload:10s} {out[f'{workload}_instructions_per_event']:>8,d}", file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
