"""The relay's wire between nodes: messages on Redis pub/sub, and the remote link.

A node that holds a client's WebSocket but not its room (the *edge*) sends
the connection's frames to the room's *home* node as ``open`` / ``frame`` /
``gone`` messages on the home's channel; the home answers on the edge's
channel with ``write`` / ``close`` / ``abort``. On the home, each relayed
connection is a ``RemoteLink``: to the transport it is one more link, whose
writes become messages. Messages are compact JSON; the keys are one letter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, cast

from roomsignal.server._outbox import Link as _Link

__all__ = ["RemoteLink", "decode_message", "encode_message"]

# message kinds: edge -> home
OPEN = "o"  # {"k","n": edge node, "c": edge conn, "s": session id[, "e": new room's epoch]}
FRAME = "f"  # {"k","n","c","r": raw text frame}
GONE = "x"  # {"k","n","c"}: the client's socket closed
# home -> edge
WRITE = "w"  # {"k","c","f": [frames][, "p": frames its requests made the home write]}
CLOSE = "cl"  # {"k","c","code","reason"}
ABORT = "ab"  # {"k","c"}
JOINED = "j"  # {"k","c"}: the relayed join got a seat (every later frame goes to the home)


def encode_message(message: dict[str, Any]) -> str:
    """One relay message as compact JSON."""
    return json.dumps(message, separators=(",", ":"))


def decode_message(data: str | bytes) -> dict[str, Any] | None:
    """A relay message, or None if it is not one (logged by the caller)."""
    try:
        message = json.loads(data)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("k"), str):
        return None
    return cast(dict[str, Any], message)


class RemoteLink(_Link):
    """A connection held by another node, seen by the home's transport as a link.

    ``send(node, message)`` queues a message for ``node``'s channel; it must
    keep the order of calls (the cluster's single writer does).
    """

    __slots__ = ("node", "open", "owed", "remote_conn", "send")

    def __init__(
        self, send: Callable[[str, dict[str, Any]], None], node: str, remote_conn: int
    ) -> None:
        super().__init__(cast(Any, None), 0, 0.0)  # no socket here: the edge holds it
        self.send = send
        self.node = node
        self.remote_conn = remote_conn
        self.open = True
        # Frames this connection's requests made the home write, not yet
        # told to the edge (which paces its client by them).
        self.owed = 0

    @property
    def alive(self) -> bool:
        return self.open

    def write(self, frames: Iterable[str]) -> None:
        """Send the frames to the edge, in order, in one message."""
        if self.open:
            batch = list(frames)
            if batch:
                message: dict[str, Any] = {"k": WRITE, "c": self.remote_conn, "f": batch}
                if self.owed:
                    message["p"], self.owed = self.owed, 0
                self.send(self.node, message)

    def close(self, code: int, reason: str) -> None:
        """Ask the edge to close the client's socket with ``code`` (once)."""
        if self.open:
            self.open = False
            self.send(
                self.node, {"k": CLOSE, "c": self.remote_conn, "code": code, "reason": reason}
            )

    def abort(self) -> None:
        """Ask the edge to drop the client's TCP connection."""
        self.aborted = True
        if self.open:
            self.open = False
            self.send(self.node, {"k": ABORT, "c": self.remote_conn})

    async def drain(self) -> None:
        """Nothing to wait for here: Redis takes the bytes."""

    async def pace(self, cost: int, rate: int) -> None:
        """The edge paces its own client (by ``owed``, sent with the frames)."""

    async def finish(self) -> None:
        """The edge awaits its own closing handshake."""
