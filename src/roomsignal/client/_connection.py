"""A websockets client connection that hands whole data frames straight to the session.

websockets parses every frame with a generator-based parser and queues each
message for ``recv()``, which wakes a reader task per message. For a
signaling client whose frames are small and whose handling never blocks, that
costs more than the handling itself. ``DirectConnection`` keeps websockets for
everything that needs it (the handshake, control frames, closing, keepalive,
fragmented messages, errors) and takes only the common case off its hands:

- ``FrameSplitter`` (sans-I/O) cuts the byte stream after the HTTP handshake
  into whole frames. A final, unmasked text or binary frame with no reserved
  bits comes out as its payload; any other frame comes out as its exact
  bytes, which are fed to websockets' own parser. Since websockets is only
  ever fed whole frames, its parser is always at a frame boundary, and the
  two paths never disagree on where a frame starts.
- Payloads go to ``on_frames`` at once, a run at a time (no queue, no task
  wake-up). While a
  fragmented message is being assembled or waits in websockets' queue,
  whole frames go through websockets too (``backlog``), so order is kept.
- Anything odd (a masked frame, reserved bits, a frame over ``max_size``, a
  handshake that is not a plain 101) switches the connection to websockets
  alone for good, which then fails it as it should.

Frames are delivered in batches of at most ``FRAMES_PER_BATCH`` frames, one batch per
loop iteration, and the socket is not read while frames of an earlier read
still wait for their batch. A single read can hold well over a thousand small
frames (asyncio reads up to 256 KiB); in batches, each listener runs between
two batches, so a burst never has more than a batch of events alive at once.
Left to pile up, they outlive the young generations of the garbage
collector and drive full collections of the whole heap (pydantic's
validators make that slow): in a burst of 100,000 events that cost more
than a bare ``recv()`` loop's whole handling of an event (docs/benchmarks.md).

Reading can be held by the session (``hold_reading``: its listeners' queues
are full; no further batch is taken either) as well as by websockets (its
own message queue is full) and by batches still queued; the transport reads again
only when nothing holds it. Frames still queued are delivered before
the end of the stream or the connection's loss is seen, so none is lost.
``fail`` closes the connection from inside a frame callback (a frame the
session will not accept), and no later frame reaches ``on_frames``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN, Event

__all__ = ["FRAMES_PER_BATCH", "Binary", "DirectConnection", "FrameSplitter", "Raw"]

FRAMES_PER_BATCH: Final = 64
"""Whole frames delivered per loop iteration (see the module docstring)."""

_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)
_SWITCHING = b"HTTP/1.1 101 "
_END_OF_HEADERS = b"\r\n\r\n"
_MAX_HEADERS = 65536
_HELD_BY_WEBSOCKETS = 1
_HELD_BY_SESSION = 2
_HELD_BY_BATCHES = 4
_ALL: Final = 1 << 62


class Raw(bytes):
    """Bytes for websockets' own parser, as they came (see ``FrameSplitter``)."""

    __slots__ = ()


class Binary(bytes):
    """The payload of a binary frame (see ``FrameSplitter``)."""

    __slots__ = ()


def _wire(item: bytes) -> bytes:
    """The frame an item of ``FrameSplitter.feed`` came from, for websockets' parser."""
    if type(item) is Raw:
        return item
    first, payload = (0x82 if type(item) is Binary else 0x81), bytes(item)
    size = len(payload)
    if size < 126:
        head = bytes((first, size))
    elif size < 65536:
        head = bytes((first, 126)) + size.to_bytes(2)
    else:
        head = bytes((first, 127)) + size.to_bytes(8)
    return head + payload


class FrameSplitter:
    """Cuts a server-to-client WebSocket byte stream into whole frames (no I/O).

    ``feed(data)`` returns a list of items in stream order. The payload of a
    final unmasked text or binary frame with no reserved bits (which may be
    delivered directly) comes out as ``bytes`` for text (UTF-8 or not: the
    codec judges it) and as ``Binary`` for binary. Anything else comes out as ``Raw``: a whole frame, or bytes to hand to
    websockets as they are (the HTTP handshake, or, once ``passthrough`` is
    set, everything that follows). Incomplete frames wait for more data.
    """

    __slots__ = ("_buffer", "_start", "handshake_done", "max_size", "passthrough")

    def __init__(self, max_size: int | None) -> None:
        self.max_size = max_size
        self.handshake_done = False
        self.passthrough = False
        self._buffer = b""
        self._start = 0  # where the pending bytes start in ``_buffer``

    def feed(self, data: bytes, limit: int = _ALL) -> list[bytes]:
        """Split ``data`` (appended to what is pending) into frames; see the class.

        At most ``limit`` items come out; whole frames past them stay pending
        for the next call (which may pass no new data).
        """
        if self.passthrough:
            return [Raw(data)] if data else []
        pos = 0
        if self._buffer:
            if data:
                data = self._buffer[self._start :] + data
            else:  # the rest of a read cut short by ``limit``: no copy
                data, pos = self._buffer, self._start
            self._buffer = b""
            self._start = 0
        out: list[bytes] = []
        if not self.handshake_done:
            data = data[pos:]
            pos = 0
            end = data.find(_END_OF_HEADERS)
            if end < 0:
                if len(data) > _MAX_HEADERS or not _SWITCHING.startswith(data[:13]):
                    return self._give_up(out, data)
                self._buffer = data
                return out
            if not data.startswith(_SWITCHING):
                return self._give_up(out, data)  # a refusal: websockets reads its body
            end += len(_END_OF_HEADERS)
            out.append(Raw(data[:end]))  # a 101 has no body
            self.handshake_done = True
            data = data[end:]
        size = len(data)
        max_size = _ALL if self.max_size is None else self.max_size
        append = out.append
        left = limit - len(out)
        # Plain indexing and arithmetic only: this loop runs once per frame.
        while size - pos >= 2:
            if left <= 0:  # kept whole: the next call goes on from ``pos``
                self._buffer = data
                self._start = pos
                return out
            left -= 1
            head1 = data[pos]
            length = data[pos + 1]
            if length & 0x80 or head1 & 0x70:
                # Masked or reserved bits: websockets' to judge, from here on.
                return self._give_up(out, data[pos:])
            start = pos + 2
            if length >= 126:
                if length == 126:
                    if size - pos < 4:
                        break
                    length = data[start] << 8 | data[start + 1]
                    start += 2
                else:
                    if size - pos < 10:
                        break
                    length = int.from_bytes(data[start : start + 8])
                    start += 8
                if length > max_size:  # too big: websockets fails the connection
                    return self._give_up(out, data[pos:])
            elif length > max_size:
                return self._give_up(out, data[pos:])
            end = start + length
            if end > size:
                break
            if head1 == 0x81:  # a final text frame
                # Not decoded here: pydantic-core's parser reads UTF-8 bytes as fast as a
                # str, and refuses bytes that are not UTF-8 (the codec reports them).
                append(data[start:end])
            elif head1 == 0x82:  # a final binary frame
                append(Binary(data[start:end]))
            else:
                append(Raw(data[pos:end]))
                if head1 & 0x0F == 8:  # close: websockets takes over what follows
                    self.passthrough = True
                    if end < size:
                        append(Raw(data[end:]))
                    return out
            pos = end
        if pos < size:
            self._buffer = data[pos:]
        return out

    def discard(self) -> None:
        """Forget what is pending (the connection failed: nobody reads it)."""
        self._buffer = b""
        self._start = 0

    def _give_up(self, out: list[bytes], rest: bytes) -> list[bytes]:
        self.passthrough = True
        out.append(Raw(rest))
        return out


class DirectConnection(ClientConnection):
    """``ClientConnection`` with a synchronous fast path for whole data frames.

    ``on_frames(items, start)`` takes the payloads ``items[start:]`` in order,
    up to the first ``Raw`` item (websockets' business) or until it fails the
    connection, and returns the index of the first item it did not take; it
    must take at least ``items[start]``, and must not raise or block.
    ``backlog`` counts complete messages queued for ``recv()``; the reader
    calls ``took()`` after each.
    """

    # Our own state in slots: websockets' connection already fills an instance
    # dict past the size at which CPython stops sharing its keys, and every
    # attribute added to it after that regrows the whole table (1.5 KiB).
    __slots__ = (
        "_feed_websockets",
        "_fragment",
        "_held",
        "_next_batch",
        "_splitter",
        "backlog",
        "on_frames",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_frames: Callable[[list[bytes], int], int] | None = None
        self.backlog = 0
        self._fragment = False
        protocol = self.protocol
        limits = [size for size in (protocol.max_message_size, protocol.max_fragment_size) if size]
        self._splitter = FrameSplitter(min(limits) if limits else None)
        self._feed_websockets = super().data_received
        self._held = 0
        self._next_batch: asyncio.Handle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Set up as websockets does, then route its read pauses through ``_hold``."""
        super().connection_made(transport)
        messages = self.recv_messages
        messages.pause = self._pause_by_websockets  # bound methods: smaller than lambdas
        messages.resume = self._resume_by_websockets

    def shed_handshake(self) -> None:
        """Let go of the opening handshake's headers (on an open connection).

        websockets keeps the request and the response, with their headers,
        for the connection's life (about 4 KiB; its parser holds the
        response too); nothing reads them once the connection is open. The
        objects stay, emptied: websockets takes a response to mean that the
        handshake is over.
        """
        response = self.response
        if response is not None and response.status_code == 101:
            response.headers.clear()
            response.body = b""
            if self.request is not None:
                self.request.headers.clear()

    def _pause_by_websockets(self) -> None:
        self._hold(_HELD_BY_WEBSOCKETS, True)

    def _resume_by_websockets(self) -> None:
        self._hold(_HELD_BY_WEBSOCKETS, False)

    def hold_reading(self, hold: bool) -> None:
        """Stop (or start again) reading from the socket for the session's sake.

        Frames already read but still queued wait too.
        """
        self._hold(_HELD_BY_SESSION, hold)
        if not hold and self._held & _HELD_BY_BATCHES and self._next_batch is None:
            self._next_batch = self.loop.call_soon(self._batch)

    @property
    def reading_held(self) -> bool:
        """Whether the session holds reading."""
        return bool(self._held & _HELD_BY_SESSION)

    def _hold(self, bit: int, hold: bool) -> None:
        before = self._held
        after = before | bit if hold else before & ~bit
        self._held = after
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if after and not before:
            transport.pause_reading()
        elif before and not after:
            transport.resume_reading()

    def fail(self, code: int, reason: str) -> None:
        """Close now with ``code`` (a close frame, then the TCP connection); never raises.

        Safe to call from ``on_frames``: the frames after the current one are
        not handed to ``on_frames`` (nor, once the close frame is out, to
        ``recv()``).
        """
        self.on_frames = None
        self._splitter.discard()  # frames still queued: moot once failed
        try:
            self.protocol.fail(code, reason)
            self.send_data()
        finally:
            if self.transport is not None:
                self.transport.close()

    def data_received(self, data: bytes) -> None:
        """Deliver whole data frames directly, in batches; feed websockets everything else."""
        splitter = self._splitter
        if self._held & _HELD_BY_BATCHES and not splitter.passthrough:
            splitter.feed(data, 0)  # earlier frames still wait: these go behind them
            return
        self._batch(data)

    def _batch(self, data: bytes = b"", limit: int = FRAMES_PER_BATCH) -> None:
        """Deliver up to ``limit`` frames; take the next batch soon if more may wait."""
        self._next_batch = None
        items = self._splitter.feed(data, limit)
        count = len(items)
        index = 0
        while index < count:
            on_frames = self._direct_target()  # websockets may have queued or closed
            if on_frames is not None and type(items[index]) is not Raw:
                index = on_frames(items, index)  # up to the next Raw, or a failure
            else:
                self._feed_websockets(_wire(items[index]))
                index += 1
        if count >= limit:  # more whole frames may be pending
            if not self._held & _HELD_BY_BATCHES:
                self._hold(_HELD_BY_BATCHES, True)
            if not self._held & _HELD_BY_SESSION:
                self._next_batch = self.loop.call_soon(self._batch)
        elif self._held & _HELD_BY_BATCHES:
            self._hold(_HELD_BY_BATCHES, False)

    def _finish_batches(self) -> None:
        """Deliver every frame still queued, at once (the stream is ending)."""
        if self._held & _HELD_BY_BATCHES:
            if self._next_batch is not None:
                self._next_batch.cancel()
            self._batch(b"", _ALL)

    def eof_received(self) -> None:
        """Deliver what is still queued, then let websockets see the end of the stream."""
        self._finish_batches()
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        """Deliver what is still queued, then let websockets see the connection go."""
        self._finish_batches()
        super().connection_lost(exc)

    def _direct_target(self) -> Callable[[list[bytes], int], int] | None:
        """Where whole data frames may go directly now, if anywhere."""
        if self.backlog or self._fragment or self.protocol.state is not OPEN:
            return None
        return self.on_frames

    def process_event(self, event: Event) -> None:
        """Queue a data frame websockets parsed, keeping count of whole messages."""
        if type(event) is Frame and event.opcode in _DATA and self.response is not None:
            self._fragment = not event.fin
            if event.fin:
                self.backlog += 1
        super().process_event(event)

    def took(self) -> None:
        """The reader took one queued message with ``recv()``."""
        self.backlog -= 1
