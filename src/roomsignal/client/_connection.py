"""A websockets client connection that hands complete frames straight to the session.

websockets parses frames in the protocol's ``data_received`` and queues each
message for ``recv()``, which wakes a reader task per message. For a
signaling client whose frames are small and whose handling never blocks, that
queue and wake-up cost about as much as the handling itself. This subclass
calls ``on_frame`` with the payload of every complete, unfragmented data
frame as soon as it is parsed; everything else (fragmented messages, and any
frame that arrives while such a message waits in the queue) still goes
through websockets' own queue, which the session's reader drains with
``recv()``, so the order of messages is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event

__all__ = ["DirectConnection"]

_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class DirectConnection(ClientConnection):
    """``ClientConnection`` with a synchronous fast path for whole data frames.

    ``on_frame`` must not raise and must not block. ``backlog`` counts complete
    messages queued for ``recv()``; the reader calls ``took()`` after each.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_frame: Callable[[str | bytes], None] | None = None
        self.backlog = 0
        self._fragment = False

    def process_event(self, event: Event) -> None:
        """Hand a whole data frame to ``on_frame``, or queue it as websockets does."""
        if type(event) is Frame and event.opcode in _DATA and self.response is not None:
            on_frame = self.on_frame
            if (
                on_frame is not None
                and event.fin
                and event.opcode is not Opcode.CONT
                and not self.backlog
                and not self._fragment
            ):
                # pydantic-core validates str faster than bytes; a frame that is not
                # UTF-8 goes as bytes, for the codec to report it.
                data = event.data
                frame: str | bytes
                try:
                    frame = str(data, "utf-8")
                except UnicodeDecodeError:
                    frame = bytes(data)
                on_frame(frame)
                return
            self._fragment = not event.fin
            if event.fin:
                self.backlog += 1
        super().process_event(event)

    def took(self) -> None:
        """The reader took one queued message with ``recv()``."""
        self.backlog -= 1
