"""Tracks of our own: a feed its owner can end, a moving test pattern, a tone.

``Feed`` forwards another track's frames and can be ended at any moment by
its owner, even while a reader waits in ``recv()``: that is how a
publisher's ``MediaRelay`` (whose reading task only stops when its source
ends) and a subscriber's relay of a remote track that never got a frame are
made to finish on close. ``TestPatternTrack`` and ``ToneTrack`` are
generated media: scrolling colour bars and a sine tone, paced in real time,
built with PyAV frames (no numpy needed).
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import time
from typing import Any

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame
from av.frame import Frame
from av.packet import Packet

__all__ = ["Feed", "TestPatternTrack", "ToneTrack"]

_VIDEO_CLOCK = 90_000
# Seven colour bars (Y, U, V), as on a test card.
_BARS = (
    (235, 128, 128),
    (210, 16, 146),
    (170, 166, 16),
    (145, 54, 34),
    (106, 202, 222),
    (81, 90, 240),
    (41, 240, 110),
)


class Feed(MediaStreamTrack):
    """Forwards ``source``'s frames until ``end()``; then readers get ``MediaStreamError``."""

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        self._ending = False
        self._reader: asyncio.Task[object] | None = None

    async def recv(self) -> Frame | Packet[Any]:
        if self._ending or self.readyState != "live":
            raise MediaStreamError
        task = asyncio.current_task()
        self._reader = task
        try:
            return await self.source.recv()
        except asyncio.CancelledError:
            # end() cancelled the wait: the reader sees the track end, as if the
            # source had ended (unless someone else cancelled it too).
            if self._ending and task is not None and task.uncancel() == 0:
                raise MediaStreamError from None
            raise
        finally:
            self._reader = None

    async def end(self, timeout: float = 2.0) -> None:
        """End the feed, wake a reader waiting in ``recv()`` and wait for it to finish."""
        self._ending = True
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task() and not reader.done():
            reader.cancel()
            await asyncio.wait({reader}, timeout=timeout)
        self.stop()


class TestPatternTrack(MediaStreamTrack):
    """Generated video: colour bars scrolling sideways, ``fps`` frames a second.

    ``width`` and ``height`` must be even (yuv420p), at least 16.
    """

    kind = "video"
    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, width: int = 320, height: int = 240, fps: float = 30.0) -> None:
        super().__init__()
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(f"width and height must be even and >= 16, not {width}x{height}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, not {fps!r}")
        self.width = width
        self.height = height
        self.fps = fps
        self.frames = 0  # frames produced so far
        self._start: float | None = None
        self._due = 0.0
        self._rows = [self._row(width, plane) for plane in range(3)]

    @staticmethod
    def _row(width: int, plane: int) -> bytes:
        """Two widths of bars for ``plane`` (0 Y, 1 U, 2 V), to slice a scrolled row from."""
        samples = width if plane == 0 else width // 2
        bar = max(1, samples // len(_BARS))
        row = bytearray()
        while len(row) < 2 * samples:
            for colour in _BARS:
                row += bytes([colour[plane]]) * bar
        return bytes(row[: 2 * samples])

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = self._due = now
        elif self._due > now:
            await asyncio.sleep(self._due - now)
        elif now - self._due > 2 / self.fps:
            self._due = now  # the reader fell behind: skip ahead rather than burst
        assert self._start is not None
        pts = int((self._due - self._start) * _VIDEO_CLOCK)
        self._due += 1 / self.fps
        n = self.frames
        self.frames += 1
        frame = VideoFrame(self.width, self.height, "yuv420p")
        for index, plane in enumerate(frame.planes):
            samples = self.width if index == 0 else self.width // 2
            shift = (n * 2 if index == 0 else n) % samples
            row = self._rows[index][shift : shift + samples]
            row += bytes(plane.line_size - samples)
            plane.update(row * (plane.buffer_size // plane.line_size))
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, _VIDEO_CLOCK)
        return frame


class ToneTrack(MediaStreamTrack):
    """Generated audio: a sine tone, mono 16-bit, in 20 ms frames."""

    kind = "audio"

    def __init__(
        self, frequency: float = 440.0, sample_rate: int = 48_000, volume: float = 0.3
    ) -> None:
        super().__init__()
        if not 0 < frequency < sample_rate / 2:
            raise ValueError(f"frequency must be in (0, {sample_rate / 2:g}) Hz, not {frequency}")
        if sample_rate % 50:
            raise ValueError(f"sample_rate must be a multiple of 50, not {sample_rate}")
        self.frequency = frequency
        self.sample_rate = sample_rate
        self.samples_per_frame = sample_rate // 50
        self.frames = 0
        self._start: float | None = None
        amplitude = int(32767 * max(0.0, min(1.0, volume)))
        # One second of samples: a whole number of periods for an integer frequency.
        self._second = array.array(
            "h",
            (
                int(amplitude * math.sin(2 * math.pi * frequency * i / sample_rate))
                for i in range(sample_rate)
            ),
        ).tobytes()

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            due = self._start + self.frames * 0.02
            if due > now:
                await asyncio.sleep(due - now)
        n = self.frames
        self.frames += 1
        per = self.samples_per_frame
        offset = (n % 50) * per * 2
        frame = AudioFrame(format="s16", layout="mono", samples=per)
        frame.planes[0].update(self._second[offset : offset + per * 2])
        frame.pts = n * per
        frame.sample_rate = self.sample_rate
        frame.time_base = fractions.Fraction(1, self.sample_rate)
        return frame
