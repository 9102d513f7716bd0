"""Micro-benchmark of the listener hub: emit -> async listener, per event, no sockets.

    python benchmarks/micro_hub.py [--n 200000]

"current" is ``roomsignal.client._listeners.ListenerHub`` as it is; "batch
drain" is the same hub whose worker pops every queued payload before it
awaits the inbox again (one ``await inbox.get()`` per wake-up, not one per
event). Events are emitted in bursts of ``--burst`` (as the reader does when
websockets hands it a batch of frames), then the listener drains them.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import statistics
import time
from types import CoroutineType
from typing import Any

from roomsignal.client import _listeners
from roomsignal.client._listeners import ListenerHub


class BatchWorker(_listeners._Worker):
    """The candidate: drain everything queued per wake-up."""

    __slots__ = ()

    async def _run(self) -> None:
        inbox = self.inbox
        items = inbox._items
        fn = self.fn
        stop = _listeners._STOP
        while True:
            if not items:
                await inbox.get_ready()  # type: ignore[attr-defined]
            payload = items.popleft()
            if payload is stop or self.removed:
                return
            try:
                result = fn(payload)
                if result is not None and (
                    type(result) is CoroutineType or inspect.isawaitable(result)
                ):
                    await result
            except Exception as exc:
                self.hub._failed(exc, self.event, payload, fn)


async def _get_ready(self: Any) -> None:
    """Wait until the inbox has an item (without popping it)."""
    while not self._items:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


async def per_event_us(batch: bool, n: int, burst: int) -> float:
    original = _listeners._Worker
    if batch:
        _listeners._Worker = BatchWorker  # type: ignore[misc]
        _listeners.Inbox.get_ready = _get_ready  # type: ignore[attr-defined]
    try:
        hub = ListenerHub()
        done = asyncio.Event()
        seen = 0

        async def listener(_payload: Any) -> None:
            nonlocal seen
            seen += 1
            if seen == n:
                done.set()

        hub.add("session_error", listener)
    finally:
        _listeners._Worker = original  # type: ignore[misc]
    payload = object()
    start = time.perf_counter()
    for _ in range(n // burst):
        for _ in range(burst):
            hub.emit("session_error", payload)
        await asyncio.sleep(0)
    await done.wait()
    elapsed = time.perf_counter() - start
    await hub.aclose(1.0)
    return elapsed / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--burst", type=int, default=64)
    args = parser.parse_args()
    n = args.n - args.n % args.burst
    for label, batch in (("current", False), ("batch drain [candidate]", True)):
        runs = [asyncio.run(per_event_us(batch, n, args.burst)) for _ in range(5)]
        print(f"emit -> async listener, {label:<24} {statistics.median(runs):6.2f} us/event")


if __name__ == "__main__":
    main()
