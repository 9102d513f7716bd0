"""A TCP proxy on loopback that a test cuts or stalls on demand."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

__all__ = ["CutProxy"]


class CutProxy:
    """A TCP proxy between clients and a server on this machine, for reconnection tests.

    Point a ``Session`` at [`url`][roomsignal.testing.CutProxy.url] instead of the server's own URL, then:

    - ``cut()`` aborts every proxied connection on both sides, with no close
      frame (a crash, a dead Wi-Fi);
    - ``refuse = True`` makes new connections fail at once (a server down);
    - ``pause()`` stops forwarding bytes both ways (a peer gone silent)
      until ``resume()``; ``pause_upstream()`` holds only what clients send
      (a request that never reaches the server if ``cut()`` follows),
      ``pause_downstream()`` only what the server sends (an answer that is
      lost if ``cut()`` follows), ``pause_downstream_after_handshake()`` the
      same from the next connection's first frame on; ``await holding()``
      returns once some bytes are held;
    - ``cut_after = N`` forwards N more bytes from the server (maybe
      mid-frame), then cuts.

    Use it as an async context manager; on exit every socket and task it
    made is closed. Only loopback targets are allowed.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        if target_host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"CutProxy only forwards to loopback, not {target_host!r}")
        self.target_host = target_host
        self.target_port = target_port
        self.refuse = False
        self.cut_after: int | None = None
        self.forwarded = 0
        """Bytes forwarded from the server so far."""
        self.port = 0
        """The proxy's own port (bound on ``__aenter__``)."""
        self.connections = 0
        """Connections accepted and forwarded so far."""
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._down_flowing = asyncio.Event()
        self._down_flowing.set()
        self._up_flowing = asyncio.Event()
        self._up_flowing.set()
        self._holding = asyncio.Event()
        self._hold_from_chunk = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>``: the URL to give a ``Session``."""
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> CutProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def cut(self) -> None:
        """Abort every proxied connection, both sides, with no close handshake."""
        for client, upstream in list(self._links):
            client.transport.abort()
            upstream.transport.abort()
        self._links.clear()

    def pause(self) -> None:
        """Stop forwarding in both directions until ``resume()``."""
        self._flowing.clear()

    def pause_downstream_after_handshake(self) -> None:
        """From the next connection's first frame on, hold what the server sends.

        The client's second chunk (its first frame, after the HTTP upgrade)
        still reaches the server, as does everything it sends later.
        """
        self._hold_from_chunk = 2

    def pause_upstream(self) -> None:
        """Stop forwarding what clients send, until ``resume()``."""
        self._up_flowing.clear()

    def pause_downstream(self) -> None:
        """Stop forwarding what the server sends, until ``resume()``."""
        self._down_flowing.clear()

    async def holding(self) -> None:
        """Return once a paused direction holds bytes it read (cancel or time it out)."""
        await self._holding.wait()

    def resume(self) -> None:
        """Forward again, both ways (bytes held for a cut connection are dropped)."""
        self._holding.clear()
        self._flowing.set()
        self._down_flowing.set()
        self._up_flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        link = (writer, up_writer)
        self._links.add(link)
        for src, dst, downstream in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.get_running_loop().create_task(self._pump(src, dst, downstream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, downstream: bool
    ) -> None:
        chunks = 0
        with contextlib.suppress(OSError, ConnectionError):
            while data := await src.read(65536):
                chunks += 1
                if not downstream and chunks == self._hold_from_chunk:
                    self._hold_from_chunk = 0
                    self._down_flowing.clear()
                gate = self._down_flowing if downstream else self._up_flowing
                if not (self._flowing.is_set() and gate.is_set()):
                    self._holding.set()
                await self._flowing.wait()
                await gate.wait()
                if dst.transport.is_closing():
                    break  # cut while held: those bytes are lost, as on a real cut
                if downstream and self.cut_after is not None:
                    room = self.cut_after - self.forwarded
                    if len(data) >= room:
                        dst.write(data[:room])  # up to the limit, maybe mid-frame
                        self.forwarded += room
                        self.cut_after = None
                        self.cut()
                        return
                if downstream:
                    self.forwarded += len(data)
                dst.write(data)
                await dst.drain()
        dst.transport.abort()
