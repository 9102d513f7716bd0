"""The client's whole data path per event, in process: socket bytes to an async listener.

    python benchmarks/micro_data_path.py [--reps 12] [--blobs 20]

Joins one ``Session`` to an embedded reference server, then feeds its
``DirectConnection.data_received`` blobs of 1 500 ``sessionError`` frames
(about what one read of the socket holds during a burst), with the seqs the
session expects, and waits until an async ``on_session_error`` listener has
seen them all. No system calls are timed: this is the client's own CPU cost.
The rungs, interleaved per round, cut the path at three points:

- ``split``: the frame splitter only (``on_frames`` does nothing);
- ``core``: plus ``ClientCore.receive`` (parse, check, seq, the ``SessionError``);
- ``full``: plus the hub, the listener's worker task and the listener itself.

Prints the median and the best of the rounds, in microseconds per event.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from roomsignal import Session
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

PER_BLOB = 1500
SECRET = "micro-data-path-secret-0123456789abcdef"


def frame(seq: int) -> bytes:
    """One unmasked server-to-client text frame of a sessionError with ``seq``."""
    payload = (
        '{"jsonrpc":"2.0","method":"sessionError","params":{"seq":' + str(seq) + ',"code":206,'
        '"message":"simulated session error","data":{"name":"SESSION_IS_FULL_ERROR_CODE"}}}'
    ).encode()
    size = len(payload)
    head = bytes([0x81, 126]) + size.to_bytes(2) if size >= 126 else bytes([0x81, size])
    return head + payload


async def measure(reps: int, blobs: int) -> dict[str, list[float]]:
    async with SignalingServer(secret=SECRET) as server:
        session = Session(server.url, token=mint(SECRET, "micro", ttl=600), name="micro")
        async with session:
            ws, core = session._ws, session._core
            assert ws is not None and ws.on_frames is not None
            seen = 0
            target = 0
            done = asyncio.Event()

            async def on_error(error: Any) -> None:
                nonlocal seen
                seen += 1
                if seen >= target:
                    done.set()

            session.on_session_error(on_error)
            full = ws.on_frames

            def core_only(items: list[bytes], start: int) -> int:
                receive = core.receive
                for item in items[start:]:
                    receive(item, 1.0)
                return len(items)

            rungs: dict[str, Callable[[Any], Any] | None] = {
                "split": lambda items, start: len(items),
                "core": core_only,
                "full": full,
            }
            results: dict[str, list[float]] = {name: [] for name in rungs}
            for _ in range(reps):
                for name, hook in rungs.items():
                    seq = core.last_seq
                    data = []
                    for _ in range(blobs):
                        data.append(b"".join(frame(seq + 1 + i) for i in range(PER_BLOB)))
                        seq += PER_BLOB
                    seen, target = 0, PER_BLOB * blobs
                    done.clear()
                    ws.on_frames = hook
                    start = time.perf_counter()
                    for blob in data:
                        ws.data_received(blob)
                        await asyncio.sleep(0)
                        while ws._next_batch is not None:  # noqa: ASYNC110 - batches of FRAMES_PER_BATCH frames
                            await asyncio.sleep(0)
                    if name == "full":
                        await asyncio.wait_for(done.wait(), 60)
                    else:
                        core.last_seq = seq
                    results[name].append((time.perf_counter() - start) / target * 1e6)
            ws.on_frames = full
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=12)
    parser.add_argument("--blobs", type=int, default=20)
    args = parser.parse_args()
    results = asyncio.run(measure(args.reps, args.blobs))
    print(f"{'rung':8s} {'median us/event':>16s} {'best':>8s}")
    for name, runs in results.items():
        print(f"{name:8s} {statistics.median(runs):16.3f} {min(runs):8.3f}")


if __name__ == "__main__":
    main()
