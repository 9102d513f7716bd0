"""``roomsignal load-test --media``: publishers send real video, the others receive it.

Each publisher bot publishes a generated test pattern (``roomsignal.media``,
aiortc, host candidates only); once every bot has joined, every other bot of
its room subscribes to it, a few subscriptions at a time. The report gives
the subscriptions made and failed, the time from ``subscribe()`` to the
first decoded frame (p50/p95/p99), and over the chat phase the frames
decoded per second and the bitrate received (``bytesReceived`` of each peer
connection's transport stats). Imported only with ``--media``: nothing
else of load-test needs aiortc.

Against a server with a media node (``publish`` answers an upstream
exchange, PROTOCOL.md section 10) it works the same; the report then also says how
many upstreams the publishers sent. In both modes it gives the subscribers
sustained (still open at the end of the chat phase and decoding at least
90 % of the publisher's frame rate over it) and the frames delivered.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from roomsignal.client import Session
from roomsignal.errors import SessionErrorException
from roomsignal.media import Publisher, Subscriber, Subscription, TestPatternTrack

__all__ = ["MediaLoad"]

WIDTH, HEIGHT, FPS = 160, 120, 15.0  # small: many peer connections share two cores
_AT_ONCE = 4  # subscriptions negotiated at a time
SUSTAINED = 0.9  # of the publisher's frame rate, over the chat phase


class MediaLoad:
    """The publishers, subscribers and subscriptions of one run; ``close()`` ends them all."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._publishers: list[Publisher] = []
        self._subscribers: dict[int, Subscriber] = {}
        self._subscriptions: list[Subscription] = []
        self._failures: Counter[str] = Counter()
        self._gate = asyncio.Semaphore(_AT_ONCE)
        self._mark: tuple[float, int, int] | None = None  # (time, frames, bytes) at chat start
        self._span: tuple[float, int, int] | None = None  # the chat phase's deltas
        self._marks: dict[int, int] = {}  # frames of each subscription (by id) at chat start
        self._sustained: int | None = None
        self._mode = "p2p"
        self._upstreams: int | None = None  # open at the end of the chat phase

    async def publish(self, session: Session) -> None:
        """Publish a test pattern on ``session`` (raises as ``Publisher.start`` does)."""
        publisher = Publisher(session, video=TestPatternTrack(WIDTH, HEIGHT, FPS))
        self._publishers.append(publisher)
        await publisher.start()
        if publisher.upstream_exchange_id is not None:  # publish answered an upstream
            self._mode = "sfu"

    async def subscribe(self, key: int, session: Session, target: str) -> None:
        """Subscribe ``session`` (bot ``key``) to ``target``; a failure is counted, not raised."""
        subscriber = self._subscribers.get(key)
        if subscriber is None:
            subscriber = self._subscribers[key] = Subscriber(session)
        async with self._gate:
            try:
                subscription = await subscriber.subscribe(target, timeout=self.timeout)
            except SessionErrorException as exc:
                self._failures[f"{exc.code} {exc.error.name}"] += 1
                return
            except (TimeoutError, RuntimeError) as exc:
                self._failures[type(exc).__name__] += 1
                return
        self._subscriptions.append(subscription)

    async def _totals(self) -> tuple[int, int]:
        frames = sum(s.frames.video_frames for s in self._subscriptions)
        received = 0
        for subscription in self._subscriptions:
            if subscription.closed:
                continue
            report = await subscription.get_stats()
            for stats in report.values():
                if getattr(stats, "type", None) == "transport":
                    received += int(getattr(stats, "bytesReceived", 0) or 0)
        return frames, received

    async def start_span(self) -> None:
        """Mark the start of the chat phase."""
        frames, received = await self._totals()
        self._mark = (time.perf_counter(), frames, received)
        self._marks = {id(s): s.frames.video_frames for s in self._subscriptions}

    async def end_span(self) -> None:
        """Mark its end: frames and bytes in between."""
        if self._mark is None:
            return
        frames, received = await self._totals()
        began, frames0, received0 = self._mark
        seconds = time.perf_counter() - began
        self._span = (seconds, frames - frames0, received - received0)
        if self._mode == "sfu":
            self._upstreams = sum(len(p.connections) for p in self._publishers)
        need = SUSTAINED * FPS * seconds
        self._sustained = sum(
            1
            for s in self._subscriptions
            if not s.closed and s.frames.video_frames - self._marks.get(id(s), 0) >= need
        )

    def all_subscribed(self) -> bool:
        """Whether every subscription was made and saw media."""
        return not self._failures

    def report(self, percentiles: Any) -> dict[str, Any]:
        """The ``media`` object of the JSON report."""
        first = [
            s.frames.first_frame_s
            for s in self._subscriptions
            if s.frames.first_frame_s is not None
        ]
        seconds, frames, received = self._span or (0.0, 0, 0)
        count = len(self._subscriptions)
        return {
            "mode": self._mode,
            "upstreams": self._upstreams,
            "subscribers_sustained": self._sustained,
            "frames_delivered": frames,
            "publishers": len(self._publishers),
            "video": f"{WIDTH}x{HEIGHT} at {FPS:g} fps (test pattern)",
            "subscriptions": count,
            "subscription_failures": dict(self._failures),
            "first_frame_ms": percentiles(first),
            "frames": sum(s.frames.video_frames for s in self._subscriptions),
            "frames_per_s_per_subscription": (
                frames / seconds / count if seconds > 0 and count else None
            ),
            "kbps_per_subscription": (
                received * 8 / 1000 / seconds / count if seconds > 0 and count else None
            ),
            "kbps_total": received * 8 / 1000 / seconds if seconds > 0 else None,
        }

    async def close(self) -> None:
        """Close every subscriber, then every publisher (their peer connections with them)."""
        await asyncio.gather(
            *(s.close() for s in self._subscribers.values()), return_exceptions=True
        )
        await asyncio.gather(*(p.close() for p in self._publishers), return_exceptions=True)
