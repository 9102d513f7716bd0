"""The websockets transport around the rooms: it moves frames and runs deadlines.

Each connection gets an integer id and a ``_Link``; text frames are parsed
with the shared codec and handed to ``Rooms``, whose effects are carried out
here in order. Writes are synchronous (no drain per frame) and go to the
websockets transport; the frames of a large fan-out wait in the ``Outbox``
(``_outbox.py``) only until the loop iteration ends, in order per connection,
and are then written one write per connection, in chunks. A connection's
handler handles the requests already buffered before it yields (up to
``_BATCH_FRAMES``), so a sender's burst costs one write per member per
iteration, not one per frame. A connection whose unsent
output passes ``max_send_queue_bytes`` is closed with 4002 as a slow
consumer and its seat detached at once (it waits ``resume_window``). Each
connection's handler paces its reads by the frames its requests made the
server write (``max_fanout_per_second``), closes it with 1008 if it has not
joined within ``join_timeout``, and after a close keeps reading (and
ignoring) frames so the peer's close frame is seen at once. Handshakes over
``max_connections`` get HTTP 503. One task owned by the server sleeps until
the rooms' next deadline; each close or eviction is a task owned by its
connection's handler (awaited in ``Link.finish``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import ssl as _ssl
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, NegotiationError
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from roomsignal.catalog import ErrorCode
from roomsignal.protocol import SUBPROTOCOL
from roomsignal.server._config import ServerConfig
from roomsignal.server._frames import BadFrame, parse_request, ping_answer
from roomsignal.server._janus import JanusNode
from roomsignal.server._metrics import (
    INSTALL_HINT,
    METRICS_PATH,
    Counts,
    exposition,
    make_registry,
)
from roomsignal.server._outbox import YIELD_AFTER, Link, Outbox
from roomsignal.server._rooms import (
    Abort,
    Burst,
    Close,
    Effect,
    Rooms,
    Send,
    internal_error_frame,
)
from roomsignal.server._state import MediaFailure, MediaOp
from roomsignal.server._web import WebRoutes, http_response

if TYPE_CHECKING:
    from roomsignal.server._cluster import Cluster

__all__ = ["SignalingServer"]

logger = logging.getLogger("roomsignal.server")

_BURST_CHUNK = 512
_CLOSE_UNSUPPORTED = 1003
_CLOSE_POLICY = 1008
_YIELD_AFTER = YIELD_AFTER  # effects of one event past which its frames go through the outbox
_BATCH_FRAMES = 4096  # frames a handler makes, over requests already buffered, before it yields
_HIGH_FRAMES = 8192  # frames held in the outbox past which handlers stop reading


def _select_subprotocol(
    connection: ServerConnection, subprotocols: Sequence[Subprotocol]
) -> Subprotocol | None:
    """``roomsignal.v1`` when offered; a client offering none is served as v1."""
    if SUBPROTOCOL in subprotocols:
        return Subprotocol(SUBPROTOCOL)
    if subprotocols:
        raise NegotiationError(f"unsupported subprotocols; expected {SUBPROTOCOL}")
    return None


_HEALTH_PATHS = ("/healthz", "/readyz")


_Link = Link  # the name benchmarks/profile_server.py patches


class SignalingServer:
    """The reference roomsignal server (docs/protocol.md), over websockets.

    Use ``async with SignalingServer(secret=...) as server:`` (the context
    returns the started server) or ``await server.start()`` and
    ``await server.close()``; ``await server.serve_forever()`` runs until
    cancelled, then closes gracefully. ``port=0`` picks a free port, read it
    from ``server.port`` after start. Without ``secret`` a random one is made
    (read it from ``server.secret`` to mint tokens).

    Keyword-only extras: ``ping_interval``/``ping_timeout`` (keepalive; a peer
    that misses it is disconnected, not left), ``close_timeout``,
    ``max_queue`` (incoming frames buffered per connection), and the limits
    of ``ServerConfig`` (``closed_session_memory``, ``max_send_queue_bytes``,
    ``replay_buffer_bytes``, the ``max_*_bytes`` size limits,
    ``max_participants``, ``join_timeout``, ``max_connections``,
    ``max_fanout_per_second``; docs/protocol.md lists them all); ``web`` (serve the page at ``/``),
    ``dev_tokens`` (answer ``/dev/token``) and ``media_dir`` (serve its files
    at ``/media/``), see docs/web.md. ``media_node`` (``ws://host:port`` of a
    Janus server, with ``media_node_secret`` its API secret) routes media
    through it (PROTOCOL.md section 10, docs/media.md); each request to it
    gets ``media_node_timeout`` seconds, and a keepalive goes every
    ``media_node_keepalive`` seconds (a missed one counts as losing it).
    ``metrics`` (answer ``GET /metrics`` in Prometheus' text format; needs
    the ``metrics`` extra, else ``/metrics`` is 404 and a warning is logged)
    and ``ssl`` (an ``ssl.SSLContext`` for the server side: ``wss://`` and
    ``https://`` on the same port), see docs/operations.md. Not thread-safe:
    use it from one event loop.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        secret: str | None = None,
        max_streaming_participants: int = 16,
        max_sessions: int = 10_000,
        sdp_timeout: float = 10.0,
        ice_queue_limit: int = 64,
        resume_window: float = 30.0,
        max_frame_bytes: int = 65536,
        replay_buffer: int = 1024,
        allow_simulation: bool = False,
        *,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        close_timeout: float = 10.0,
        max_queue: int = 16,
        closed_session_memory: int = 65536,
        max_send_queue_bytes: int = 2**20,
        replay_buffer_bytes: int = 2 * 2**20,
        max_participants: int = 2000,
        max_name_bytes: int = 128,
        max_metadata_bytes: int = 4096,
        max_session_metadata_bytes: int = 256 * 1024,
        max_text_bytes: int = 16384,
        max_sdp_bytes: int = 49152,
        max_candidate_bytes: int = 1024,
        max_held_ice_bytes: int = 65536,
        join_timeout: float = 10.0,
        max_connections: int = 10_000,
        max_fanout_per_second: int = 10_000,
        web: bool = True,
        dev_tokens: bool = False,
        media_dir: str | None = None,
        media_node: str | None = None,
        media_node_secret: str | None = None,
        media_node_timeout: float = 5.0,
        media_node_keepalive: float = 25.0,
        metrics: bool = False,
        ssl: _ssl.SSLContext | None = None,
    ) -> None:
        self.config = ServerConfig(
            max_streaming_participants=max_streaming_participants,
            max_sessions=max_sessions,
            sdp_timeout=sdp_timeout,
            ice_queue_limit=ice_queue_limit,
            resume_window=resume_window,
            max_frame_bytes=max_frame_bytes,
            replay_buffer=replay_buffer,
            allow_simulation=allow_simulation,
            closed_session_memory=closed_session_memory,
            max_send_queue_bytes=max_send_queue_bytes,
            replay_buffer_bytes=replay_buffer_bytes,
            max_participants=max_participants,
            max_name_bytes=max_name_bytes,
            max_metadata_bytes=max_metadata_bytes,
            max_session_metadata_bytes=max_session_metadata_bytes,
            max_text_bytes=max_text_bytes,
            max_sdp_bytes=max_sdp_bytes,
            max_candidate_bytes=max_candidate_bytes,
            max_held_ice_bytes=max_held_ice_bytes,
            join_timeout=join_timeout,
            max_connections=max_connections,
            max_fanout_per_second=max_fanout_per_second,
            media_node=media_node is not None,
        )
        self.host = host
        self.secret = secret if secret is not None else secrets.token_urlsafe(32)
        self._port = port
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._close_timeout = close_timeout
        self._max_queue = max_queue
        self._rooms: Rooms | None = None
        self._server: Server | None = None
        self._links: dict[int, _Link] = {}
        self._conn_ids = itertools.count(1)
        self._deadlines: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._armed: float | None = None
        self._closing = False
        self._sent: int = 0  # frames written, for pacing each sender's fan-out
        self._slow: list[int] = []  # connections closed as slow, seats not yet detached
        self._outbox = Outbox(self._write_now, self._evict_slow)  # large fan-outs (_outbox.py)
        # Plain HTTP beside the endpoint: the page, /dev/token, /media (docs/web.md).
        self.web = WebRoutes(self.secret, web=web, dev_tokens=dev_tokens, media_dir=media_dir)
        self._refused = 0  # handshakes refused at max_connections since the last log line
        self._refused_logged = -1.0
        # Set by ``Cluster.start`` (docs/scaling.md): routes joins, relays frames.
        self.cluster: Cluster | None = None
        self.media_node_url = media_node
        self._media_node_secret = media_node_secret
        self._media_node_timeout = media_node_timeout
        self._media_node_keepalive = media_node_keepalive
        self.media_node: JanusNode | None = None  # while serving with a media node
        self.ssl = ssl
        self.counts: Counts = Counts()
        """What the server counted (plain ints), read by ``GET /metrics`` (_metrics.py)."""
        self.draining: bool = False
        """Set while a cluster node drains (``Cluster.drain``): /healthz and /readyz 503."""
        self.drained: bool = False
        """Set once that drain has finished: every client was handed over and closed."""
        self._registry: Any = None
        if metrics:
            try:
                self._registry = make_registry(self)
            except ImportError:
                logger.warning("GET /metrics needs the metrics extra: %s", INSTALL_HINT)

    # --- life cycle -------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (after ``start``); the requested one before."""
        return self._port

    @property
    def url(self) -> str:
        """``ws://host:port`` of this server (``wss://`` when it serves TLS)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.ssl is not None else 'ws'}://{host}:{self._port}"

    @property
    def metrics_enabled(self) -> bool:
        """Whether ``GET /metrics`` answers (``metrics=True`` and the extra installed)."""
        return self._registry is not None

    @property
    def rooms(self) -> Rooms:
        """The live room state machine (for inspection in tests and health checks)."""
        if self._rooms is None:
            raise RuntimeError("the server is not running")
        return self._rooms

    @property
    def connection_count(self) -> int:
        """How many WebSocket connections are being served right now."""
        return len(self._links)

    @property
    def is_serving(self) -> bool:
        """Whether the server is started and not closing."""
        return self._server is not None and not self._closing

    async def start(self) -> None:
        """Bind and start serving; a closed server may be started again (empty rooms)."""
        if self._server is not None:
            raise RuntimeError("the server is already running")
        cluster = self.cluster
        self._rooms = cluster.make_rooms() if cluster else Rooms(self.secret, self.config)
        self._rooms.counts = self.counts
        self.draining = self.drained = False
        self._outbox = Outbox(self._write_now, self._evict_slow)
        self._closing = False
        self._wake = asyncio.Event()
        self._armed = None
        self._server = await serve(
            self._serve_connection,
            self.host,
            self._port,
            select_subprotocol=_select_subprotocol,
            process_request=self.web.wrap(self._admit),
            compression=None,
            max_size=self.config.max_frame_bytes,
            max_queue=self._max_queue,
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_timeout,
            close_timeout=self._close_timeout,
            ssl=self.ssl,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self._deadlines = asyncio.create_task(self._run_deadlines(self._rooms))
        if self.media_node_url is not None:
            self.media_node = JanusNode(
                self.media_node_url,
                self,
                api_secret=self._media_node_secret,
                timeout=self._media_node_timeout,
                keepalive=self._media_node_keepalive,
            )
            await self.media_node.start()
        logger.debug("serving on %s", self.url)

    async def close(self, graceful: bool = True) -> None:
        """Stop serving; idempotent.

        Graceful: every member gets ``sessionError`` 203 and ``sessionClosed``
        (reason ``serverShutdown``), then each connection is closed with 1000.
        Not graceful: every TCP connection is aborted with no close frame, as
        if the server had crashed; this also cuts short a graceful close that
        is still waiting for its closing handshakes (or was cancelled).
        Returns when every connection handler and the deadline task have
        finished. Cancelling it leaves the server closing; call it again.
        """
        server, rooms = self._server, self._rooms
        if server is None or rooms is None:
            return
        if not self._closing:
            self._closing = True
            if graceful:
                self._apply(rooms.shutdown())
                self._outbox.flush_all()
                for link in list(self._links.values()):
                    link.close(1000, "serverShutdown")
                server.close(close_connections=True, code=1000, reason="serverShutdown")
            else:
                server.close(close_connections=False)
        if not graceful:
            for link in list(self._links.values()):
                link.abort()
        await server.wait_closed()
        if self._server is not server:
            return  # another close() finished first
        self._server = None
        if self.media_node is not None:
            await self.media_node.close()
            self.media_node = None
        self._outbox.close()  # no flush scheduled by this server runs after it
        if self._deadlines is not None:
            self._deadlines.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._deadlines
            self._deadlines = None
        how = "graceful" if graceful else "drained" if self.drained else "aborted"
        logger.info("server closed (%s)", how)

    async def freeze(self) -> None:
        """Start draining: refuse new connections, handle no more frames, run no deadline.

        ``/healthz`` and ``/readyz`` answer 503 from now on. The rooms stay
        as they are (for a cluster's handover, ``Cluster.drain``): what the
        media node reports from now on is ignored too, as a frame would be
        (the journal handed over would not hold what it changed). ``close``
        still ends the server. Idempotent.
        """
        self.draining = True
        task, self._deadlines = self._deadlines, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def serve_forever(self) -> None:
        """Serve until cancelled (starting first if needed), then close gracefully."""
        if self._server is None:
            await self.start()
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await self.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- connections ------------------------------------------------------------

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Health, readiness and metrics; then refuse the handshake with 503 when full.

        ``/healthz`` and ``/readyz`` answer 200, or 503 while the node drains
        or (in a cluster) Redis is, or the media node is, unreachable; ``/metrics`` the Prometheus
        exposition (404 unless enabled). A WebSocket handshake is refused
        with 503 at ``max_connections`` and while draining.
        """
        path = request.path.split("?", 1)[0]
        if path in _HEALTH_PATHS:
            if self.draining:
                return connection.respond(503, "draining\n")
            if self.cluster is not None and not self.cluster.healthy:
                return connection.respond(503, "redis unreachable\n")
            if self.media_node is not None and not self.media_node.healthy:
                return connection.respond(503, "media node unreachable\n")
            return connection.respond(200, "ok\n")
        if path == METRICS_PATH:
            return self._metrics(connection)
        if self.draining and "websocket" in request.headers.get("Upgrade", "").lower():
            self.counts.refused += 1
            return connection.respond(503, "draining\n")
        cap = self.config.max_connections
        server = self._server
        if cap and server is not None and len(server.all_connections) >= cap:
            # At most one line a second: a flood of refusals must not flood the log.
            now = time.monotonic()
            self._refused += 1
            if now - self._refused_logged >= 1.0:
                logger.warning(
                    "refused %d connection(s): max_connections (%d) reached", self._refused, cap
                )
                self._refused, self._refused_logged = 0, now
            self.counts.refused += 1
            return connection.respond(503, "too many connections\n")
        return None

    def _metrics(self, connection: ServerConnection) -> Response:
        registry = self._registry
        if registry is None:
            return connection.respond(404, "not found\n")
        body, content_type = exposition(registry)
        return http_response(connection, HTTPStatus.OK, body, content_type)

    async def _serve_connection(self, ws: ServerConnection) -> None:
        rooms = self._rooms
        assert rooms is not None
        conn = next(self._conn_ids)
        config = self.config
        if self.cluster is not None:  # held for its journal (_commit)
            link = self.cluster.local_link(ws, conn)
        else:
            link = _Link(ws, config.max_send_queue_bytes, self._close_timeout, self.counts)
        self._links[conn] = link
        join_by: float | None = asyncio.get_running_loop().time() + config.join_timeout
        batch = 0  # frames made since this handler last yielded
        try:
            while True:
                if join_by is not None and link.closer is None and rooms.has_joined(conn):
                    join_by = None
                elif join_by is not None and self.cluster and self.cluster.relays(conn):
                    join_by = None  # joined through the cluster, on the room's home
                try:
                    if join_by is not None and link.closer is None:
                        async with asyncio.timeout_at(join_by):
                            raw = await ws.recv()
                    else:
                        raw = await ws.recv()
                except TimeoutError:
                    # A join relayed to the room's home may have been seated meanwhile.
                    if not (self.cluster is not None and self.cluster.relays(conn)):
                        link.close(_CLOSE_POLICY, "joinTimeout")
                    continue
                except ConnectionClosed:
                    break
                if link.aborted:
                    break  # connectionDrop: frames still queued are moot
                if link.closer is not None or self.draining:
                    # Closing (leave, closeSession, takeover, slow, timeout):
                    # frames queued behind it are read and ignored, so the
                    # peer's close frame is seen and the handshake ends now.
                    # Draining: the rooms are frozen (Cluster.drain); a request
                    # left unanswered is sent again after the resume elsewhere.
                    continue
                if not isinstance(raw, str):
                    link.close(_CLOSE_UNSUPPORTED, "binary frames are not supported")
                    continue
                cluster = self.cluster
                if cluster is not None and await cluster.on_frame(conn, raw, link):
                    # relayed: paced by what its earlier requests made the home write
                    await link.pace(1 + cluster.owed(conn), config.max_fanout_per_second)
                    continue
                sent = self._sent
                burst = self._on_frame(rooms, conn, raw)
                raw = ""  # not kept while idle (a join frame's token: 0.4 KiB a seat)
                if burst is not None:
                    try:
                        await self._stream(rooms, conn, burst)
                    except Exception:
                        logger.exception("internal error while streaming a burst")
                # Requests already buffered are handled before yielding (their
                # frames to one connection then go out in one write), up to
                # _BATCH_FRAMES; reading stops while the outbox is full.
                cost = 1 + self._sent - sent
                batch += cost
                outbox = self._outbox
                if batch > _BATCH_FRAMES or outbox.frames > _HIGH_FRAMES:
                    batch = 0
                    await outbox.settle(_HIGH_FRAMES)
                await link.pace(cost, config.max_fanout_per_second)
        finally:
            self._links.pop(conn, None)
            if self.cluster is not None:
                self.cluster.on_disconnect(conn)
            try:
                self._apply(rooms.disconnect(conn, time.time()))
            except Exception:
                logger.exception("internal error while disconnecting")
            await link.finish()

    def _on_frame(self, rooms: Rooms, conn: int, raw: str) -> Burst | None:
        request = None
        try:
            answer = ping_answer(raw, time.time())
            if answer is not None:  # the hot path of round trips
                self.counts.pings += 1
                self._write(conn, answer)
                self._evict_slow()
                return None
            parsed = parse_request(raw, allow_simulation=rooms.config.allow_simulation)
            if isinstance(parsed, BadFrame):
                self.counts.error(parsed.code, "answer")
                self._write(conn, parsed.frame())
                self._evict_slow()
                return None
            request = parsed
            started = time.perf_counter()
            burst = self._apply(rooms.handle(conn, request, time.time()))
            self.counts.timed(request.method, time.perf_counter() - started)
            return burst
        except Exception:
            logger.exception("internal error while handling a frame")
            if request is not None:
                self.counts.error(ErrorCode.SESSION_GENERIC_ERROR_CODE, "answer")
                self._write(conn, internal_error_frame(request.id, request.method))
            return None

    def _write(self, conn: int, frame: str, direct: bool = True) -> None:
        """Write ``frame`` now, or (not ``direct``, or behind held frames) hold it in the outbox."""
        link = self._links.get(conn)
        if link is not None:
            self._sent += 1
            if not direct or conn in self._outbox:
                self._outbox.add(conn, frame)
                return
            link.write((frame,))
            if link.slow:
                self._slow.append(conn)

    def _write_now(self, conn: int, frames: list[str]) -> None:
        """The outbox's writer: one write for what ``conn`` held."""
        link = self._links.get(conn)
        if link is not None:
            link.write(frames)
            if link.slow:
                self._slow.append(conn)

    def _evict_slow(self) -> None:
        """Detach the seats of connections just closed as slow: they wait ``resume_window``.

        From now on their notifications go to the replay buffer only.
        """
        rooms = self._rooms
        while self._slow and rooms is not None:
            conn = self._slow.pop()
            if rooms.has_joined(conn):
                self._apply(rooms.disconnect(conn, time.time()))

    def _apply(self, effects: list[Effect]) -> Burst | None:
        """Carry out effects in order; returns the burst to stream, if any."""
        burst = None
        # A large fan-out goes through the outbox, in chunks; a small answer at once.
        direct = len(effects) <= _YIELD_AFTER
        for effect in effects:
            if isinstance(effect, Send):
                self._write(effect.conn, effect.frame, direct)
                continue
            if isinstance(effect, MediaOp):
                if self.media_node is not None:
                    self.media_node.submit(effect)
                continue
            self._outbox.flush_conn(effect.conn)  # its frames go before a close or abort
            link = self._links.get(effect.conn)
            if isinstance(effect, Burst):
                burst = effect
            elif link is None:
                continue
            elif isinstance(effect, Close):
                link.close(effect.code, effect.reason)
            elif isinstance(effect, Abort):
                link.abort()
        self._evict_slow()
        self._rearm()
        return burst

    async def _stream(self, rooms: Rooms, conn: int, burst: Burst) -> None:
        """Stream a ``sessionError`` burst in chunks, draining between them.

        Stops early when the caller's connection is lost or taken over; what
        was numbered by then is in the replay buffer (and written to the new
        connection after a takeover).
        """
        remaining = burst.count
        while remaining > 0:
            count = min(remaining, _BURST_CHUNK)
            remaining -= count
            target, frames = rooms.session_errors(burst.participant_id, burst.code, count)
            if not frames:
                return
            link = self._links.get(target) if target is not None else None
            if link is not None and target is not None:
                self._outbox.flush_conn(target)
                # Not counted for pacing: bursts are a simulation facility
                # (benchmarks stream 10**5 of them), paced by drain instead.
                link.write(frames)
                if link.slow:
                    self._slow.append(target)
                    self._evict_slow()
            if target != conn or link is None or not link.alive:
                return
            await link.drain()

    # --- the media node's reports (a MediaSink for JanusNode) ---------------------

    def _media(self, report: Callable[[Rooms, float], list[Effect]]) -> None:
        rooms = self._rooms
        if rooms is None or self._closing or self.draining:
            return  # draining: frozen (``freeze``)
        try:
            self._apply(report(rooms, time.time()))
        except Exception:
            logger.exception("internal error while handling the media node's report")

    def media_done(self, op: MediaOp, sdp: str | None, failure: MediaFailure | None) -> None:
        """The media node finished ``op`` (for ``JanusNode``)."""
        self._media(lambda rooms, now: rooms.media_done(op, sdp, failure, now))

    def media_up(self, key: str) -> None:
        """The media node says exchange ``key``'s media flows (for ``JanusNode``)."""
        self._media(lambda rooms, now: rooms.media_up(key, now))

    def media_candidate(
        self, key: str, candidate: str, sdp_mid: str | None, sdp_m_line_index: int | None
    ) -> None:
        """A candidate of the media node's (for ``JanusNode``)."""
        self._media(
            lambda rooms, now: rooms.media_candidate(key, candidate, sdp_mid, sdp_m_line_index)
        )

    def media_hangup(self, key: str) -> None:
        """The media node ended exchange ``key`` (for ``JanusNode``)."""
        self._media(lambda rooms, now: rooms.media_hangup(key, now))

    def media_lost(self) -> None:
        """The media node's connection was lost (for ``JanusNode``)."""
        self._media(lambda rooms, now: rooms.media_lost(now))

    def media_back(self) -> None:
        """The media node answers again (for ``JanusNode``)."""
        self._media(lambda rooms, now: rooms.media_back(now))

    # --- deadlines ------------------------------------------------------------------

    def _rearm(self) -> None:
        rooms = self._rooms
        if rooms is None:
            return
        deadline = rooms.next_deadline()
        if deadline is not None and (self._armed is None or deadline < self._armed):
            self._wake.set()

    async def _run_deadlines(self, rooms: Rooms) -> None:
        wake = self._wake
        while True:
            try:
                deadline = rooms.next_deadline()
            except Exception:
                logger.exception("internal error while reading deadlines")
                deadline = None
            self._armed = deadline
            wake.clear()
            try:
                if deadline is None:
                    await wake.wait()
                else:
                    delay = deadline - time.time()
                    if delay > 0:
                        async with asyncio.timeout(delay):
                            await wake.wait()
                    else:  # behind (expire runs in bounded batches): others go first
                        await asyncio.sleep(0)
            except TimeoutError:
                pass
            try:
                self._apply(rooms.expire(time.time()))
            except Exception:
                logger.exception("internal error while running deadlines")
