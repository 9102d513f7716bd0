"""N server nodes as one service on Redis (``roomsignal serve --redis URL``).

Each room lives on one node, its home, holding a lease in Redis
(``_lease``): its ``Rooms`` stays pure and single-threaded, and every rule
of a room (names, the streaming count, ``seq``, replay, exchanges) is decided
there. Any node accepts any client: when a connection's ``join`` names a
room homed elsewhere, this node becomes its *edge* and relays the
connection's frames to the home over Redis pub/sub and the home's answers
back (``_relay``). New rooms are placed on the least-loaded live node;
``max_sessions`` counts the live leases of every node.

One writer task publishes every outgoing relay message in call order (one
pipeline per batch), so each connection's frames keep their order; one
reader task handles the node's channel; one beat task renews the node's
liveness key, its load and its leases, and asks whether the nodes it
relays with are alive. A dead peer's relayed connections are dropped (the
edge aborts its clients' sockets, which then reconnect and resume; the home
detaches the seats, which wait ``resume_window``). Redis unreachable: the
node says so in its log and ``/healthz`` (503), serves the rooms it homes
to the clients connected to it, and refuses the rest with close code 1013
until Redis is back. Each home journals its rooms to Redis (``_journal``)
in the writer's pipeline, ahead of the relay messages; a node that takes a
room over loads it first, so the members resume there. The design and its
bounds: docs/scaling.md.

Over 600 lines: the edge, the home, the writer, the reader and the beat all
read and change one relay state (``_relays``, ``_remote``, ``_homed``, the
outbox) and are kept in one class so that its invariants are read in one
place; the journal's own logic lives in ``_journal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from roomsignal.server._commit import CommitGate, HeldLink
from roomsignal.server._denials import Denial, RoomError
from roomsignal.server._frames import error_frame
from roomsignal.server._journal import JOURNAL, Journal, JournaledRooms, LoadRefused
from roomsignal.server._lease import BEAT, HANDOVER, LEASE, PLACE, RELEASE
from roomsignal.server._outbox import Link
from roomsignal.server._relay import (
    ABORT,
    CLOSE,
    FRAME,
    GONE,
    JOINED,
    OPEN,
    WRITE,
    RemoteLink,
    decode_message,
    encode_message,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from websockets.asyncio.server import ServerConnection

    from roomsignal.server._rooms import Rooms
    from roomsignal.server._transport import SignalingServer

__all__ = ["Cluster"]

logger = logging.getLogger("roomsignal.server.cluster")

CLOSE_NODE_LOST = 1012  # "service restart": the client reconnects (and resumes)
CLOSE_TRY_LATER = 1013  # Redis unreachable: no room can be placed now
TAKE = "t"  # relay message {"k","s": room}: a draining home handed you its room's lease
# relay message {"k","n","c"}: a draining edge asks the home to close its client with
# 1012, behind the answers to the frames it relayed before (one channel, in order)
DRAIN = "d"
_DRAIN_CLOSE = 5.0  # s: a drain waits this long at most for its clients' closing handshakes
_POOL_SIZE = 16  # Redis connections per node (besides its pub/sub one)
# A journal write with no relay message to go with it (a room served by its
# home's own clients) waits this long for more changes to join its pipeline.
_COALESCE = 0.002
# How far back the home looks among unpublished messages for the one that
# tells an edge the cost of its client's request (else its next one does).
_CHARGE_SCAN = 64
_CANCEL_AGAIN = 1.0  # s: close() cancels a cluster task again after this; the reader polls as often


@dataclass(slots=True)
class _Relay:
    home: str
    session_id: str
    # Set once the home answered the relayed join with a seat: from then on
    # every frame goes to the home, a second join too (which the home refuses
    # with 101, as a lone server does).
    joined: bool = False
    # Frames the client's requests made the home write, told with the home's
    # frames and not yet charged to the client's pacing.
    owed: int = 0


def _check_database(url: str) -> None:
    """Refuse a Redis URL whose database is not an integer (redis-py would use 0)."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    names = [parts.path.strip("/")] if parts.scheme in ("redis", "rediss") else []
    names += parse_qs(parts.query).get("db", [])
    for name in names:
        if name and not name.isdigit():
            raise ValueError(f"the database must be a number (redis://HOST:PORT/0), not {name!r}")


class Cluster:
    """Run ``server`` as one node of a cluster on the Redis at ``redis_url``.

    ``await cluster.start()`` connects to Redis (raising ``ConnectionError``
    if it cannot), then starts the server; ``await cluster.close()`` closes
    the server, gives up this node's leases and stops the cluster's tasks.
    ``lease`` is a room lease's time to live (seconds; renewed every
    ``lease / 3``); a dead node's rooms move after at most that. Needs the
    ``redis`` extra. Not thread-safe: use it from the server's event loop.
    """

    def __init__(
        self,
        server: SignalingServer,
        redis_url: str,
        *,
        node_id: str | None = None,
        lease: float = LEASE,
        prefix: str = "roomsignal",
    ) -> None:
        if lease <= 0:
            raise ValueError("lease must be positive")
        _check_database(redis_url)
        self.server = server
        self.redis_url = redis_url
        self.node_id = node_id or secrets.token_hex(6)
        self.lease = lease
        self.prefix = prefix
        self.healthy = False
        """Whether Redis answered this node's last beat."""
        self.round_trips = 0
        """Redis commands sent by this node (scripts and publishes), for benchmarks."""
        self._redis: Redis | None = None
        self._relays: dict[int, _Relay] = {}  # edge: conn -> its room's home
        self._remote: dict[tuple[str, int], int] = {}  # home: (edge, conn) -> virtual conn
        self._homed: dict[str, float] = {}  # home: room -> when last seen empty (0: in use)
        # (node, message, encoded), in call order
        self._outbox: list[tuple[str, dict[str, Any]]] = []  # encoded when flushed
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()  # relay messages are waiting
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._place_after = 0.0  # monotonic: no placing before (Redis just came back)
        self._lost_redis = False  # Redis was unreachable since the start (a recovery is news)
        self._draining = False  # drain(): no more beats, rooms handed over
        self._flushing = asyncio.Lock()  # one pipeline at a time (the writer's, a drain's)
        # The rooms homed here, as written to Redis for a takeover (_journal);
        # None when seats cannot be resumed anyway (resume_window 0).
        self._journal: Journal | None = None
        # Frames to this node's own clients wait for the journal (_commit).
        self._gate: CommitGate | None = None
        if server.config.resume_window > 0:
            ttl = server.config.resume_window + lease
            journal = self._journal = Journal(self._key, self.node_id, ttl, self._wake.set)
            # Nothing is held while Redis is unreachable: a home serves its
            # own clients through an outage (nothing can be journaled then).
            self._gate = CommitGate(lambda: self.healthy and bool(journal.dirty), self._hurry)

    def make_rooms(self) -> Rooms:
        """The server's ``Rooms``: journaled to Redis when seats can be resumed."""
        server = self.server
        if self._journal is None:
            from roomsignal.server._rooms import Rooms

            return Rooms(server.secret, server.config)
        return JournaledRooms(server.secret, server.config, self._journal.mark)

    def local_link(self, ws: ServerConnection, conn: int) -> Link:
        """The transport's link for a connection to this node: held for the journal (_commit)."""
        config, close_timeout = self.server.config, self.server._close_timeout
        counts = self.server.counts
        if self._gate is None:
            return Link(ws, config.max_send_queue_bytes, close_timeout, counts)
        return HeldLink(ws, config.max_send_queue_bytes, close_timeout, self._gate, conn, counts)

    # --- keys --------------------------------------------------------------------

    def _key(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}:{kind}:{name}" if name else f"{self.prefix}:{kind}"

    # --- life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Connect to Redis, start the server and the cluster's tasks."""
        # the extra: imported only when clustering
        from redis.asyncio import BlockingConnectionPool, Redis

        # A bounded pool that makes callers wait for a connection: a burst of
        # joins queues its placements instead of failing with "Too many connections".
        pool = BlockingConnectionPool.from_url(
            self.redis_url,
            max_connections=_POOL_SIZE,
            timeout=max(self.lease, 1.0),
            socket_connect_timeout=2,
            socket_timeout=5,
        )
        redis: Redis = Redis.from_pool(pool)  # closes the pool on aclose()
        try:
            await redis.ping()
        except Exception as exc:
            await redis.aclose()
            raise ConnectionError(f"cannot reach Redis at {self.redis_url}: {exc}") from None
        self._redis = redis
        self.server.cluster = self
        try:
            await self.server.start()
        except BaseException:
            self._redis = None
            self.server.cluster = None
            await redis.aclose()
            raise
        try:
            await self._beat_once()
            self._place_after = 0.0  # the first beat is no recovery
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(self._run_reader()),
                loop.create_task(self._run_writer()),
                loop.create_task(self._run_beats()),
            ]
            async with asyncio.timeout(5):
                await self._subscribed.wait()
        except BaseException:  # nothing started here may outlive a failed start
            await self.close(graceful=False)
            raise
        logger.info("node %s joined the cluster on %s", self.node_id, self.redis_url)

    async def drain(self) -> dict[str, str]:
        """Hand every room homed here to another live node, then close every client with 1012.

        For a rolling restart (SIGTERM, docs/operations.md): the server stops
        taking connections at once (``/healthz`` 503) and handles no more
        frames; the rooms' last changes are written to Redis (the journal
        first), then each room's lease is given to the least-loaded live node
        (``HANDOVER``), which is told to load it; then every client is
        closed with 1012 (``nodeDraining``), so it reconnects and resumes on
        another node. Returns room -> its new home ("" when no other node
        was alive: its lease is released on ``close`` and its journal kept,
        so the next node to place it resumes its members). Call ``close``
        afterwards; the rooms are not shut down (nobody gets ``sessionClosed``).
        """
        server, redis = self.server, self._redis
        if redis is None or not server.is_serving:
            return {}
        started = time.monotonic()
        self._draining = True
        await server.freeze()
        rooms = list(self._homed)
        try:
            targets = await self._hand_over(redis, rooms)
        except Exception as exc:  # the clients still go: the leases lapse, the journals stay
            logger.error("cannot hand the rooms over (Redis: %s): they move when leases lapse", exc)
            targets = [""] * len(rooms)
        moved: dict[str, str] = {}
        for room, target in zip(rooms, targets, strict=True):
            target = target.decode() if isinstance(target, bytes) else str(target)
            moved[room] = target
            if target:
                self._homed.pop(room, None)
                if self._journal is not None:
                    self._journal.forget(room)
                self._send(target, {"k": TAKE, "s": room})
        local = [link for link in server._links.values() if not isinstance(link, RemoteLink)]
        for conn, link in list(server._links.items()):
            relay = self._relays.get(conn)
            if relay is None or isinstance(link, RemoteLink):
                # Ours (frozen: every answer is written) or an edge's (it closes it).
                link.close(CLOSE_NODE_LOST, "nodeDraining")
            else:  # relayed: its home closes it, once the answers in flight are out
                self._send(relay.home, {"k": DRAIN, "n": self.node_id, "c": conn})
        try:
            async with self._flushing, asyncio.timeout(max(self.lease, 1.0)):
                await self._flush(redis)  # the TAKE, CLOSE and DRAIN messages go out now
        except Exception as exc:
            logger.error("cannot tell the other nodes (Redis: %s)", exc)
        waits = [asyncio.ensure_future(link.ws.wait_closed()) for link in local]
        if waits:  # their closing handshakes, bounded (close() aborts what is left)
            _, pending = await asyncio.wait(waits, timeout=_DRAIN_CLOSE)
            for wait in pending:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        logger.info(
            "node %s drained in %.2fs: %d room(s) handed over, %d kept in Redis",
            self.node_id,
            time.monotonic() - started,
            sum(1 for t in moved.values() if t),
            sum(1 for t in moved.values() if not t),
        )
        server.drained = True  # its close() aborts nothing that was not handed over
        return moved

    async def _hand_over(self, redis: Redis, rooms: list[str]) -> list[Any]:
        """Flush the journal, then run ``HANDOVER`` for ``rooms``: their new homes."""
        async with asyncio.timeout(max(self.lease, 1.0) * 3):
            for _ in range(3):  # the journal first: every change a client was sent
                async with self._flushing:
                    await self._flush(redis)
                if self._journal is None:
                    break
                self._journal.tick(time.time())  # a write that did not land: again
                if not self._journal.dirty:
                    break
            home_prefix = self._key("home") + ":"
            keys = [self._key("load"), self._key("rooms"), *(home_prefix + r for r in rooms)]
            self.round_trips += 1
            targets: list[Any] = await redis.eval(
                HANDOVER,
                len(keys),
                *keys,
                self.node_id,
                self._key("node") + ":",
                int(self.lease * 1000),
                int(time.time() * 1000),
                home_prefix,
            )
            return targets

    async def close(self, graceful: bool = True) -> None:
        """Close the server, give up this node's leases, stop the tasks; idempotent.

        Graceful: the clients this node relays to other homes are closed with
        1012 first (their rooms go on: they reconnect elsewhere and resume);
        the rooms homed here end as on a lone server (203, ``sessionClosed``).
        """
        if self._gate is not None:  # what closing writes goes out with nothing held
            self._release(self._gate.release_all())
        if graceful and self.server.is_serving:
            for conn in list(self._relays):
                link = self.server._links.get(conn)
                if link is not None:
                    link.close(CLOSE_NODE_LOST, "nodeShutdown")
        await self.server.close(graceful=graceful)
        redis = self._redis
        if redis is None:
            return
        self._redis = None
        with contextlib.suppress(Exception):
            await self._flush(redis)
        # _tasks_done removes finished tasks from the list: take it whole first
        tasks, self._tasks = self._tasks, []
        self._wake.set()  # the writer sees the cluster closed and returns
        self._urgent.set()
        pending = set(tasks)
        while pending:
            # Again while one is left: a cancellation can be lost in a Redis call
            # caught mid-reply (seen as a node that never exited on SIGTERM).
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=_CANCEL_AGAIN)
            if pending:
                logger.warning("%d cluster task(s) outlived a cancellation", len(pending))
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                logger.error("a cluster task had failed: %r", task.exception())
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                keys = [self._key("rooms"), *(self._key("home", s) for s in self._homed)]
                await redis.eval(RELEASE, len(keys), *keys, self.node_id, self._key("home") + ":")
                await redis.delete(self._key("node", self.node_id))
                await redis.hdel(self._key("load"), self.node_id)
        await redis.aclose()
        self.server.cluster = None
        self.healthy = False

    # --- the edge: hooks called by the transport ---------------------------------

    def relays(self, conn: int) -> bool:
        """Whether ``conn`` joined a room homed on another node (its seat is there).

        False while its join is only on its way, or was refused: until then
        the connection's join timeout still runs, as on a lone server.
        """
        relay = self._relays.get(conn)
        return relay is not None and relay.joined

    async def on_frame(self, conn: int, raw: str, link: Link) -> bool:
        """Route one frame of a local connection; True if the cluster took it.

        A ``join`` is routed by its token's room: to this node's own rooms
        (False: the transport handles it), or relayed to the room's home.
        Other frames of a relayed connection follow its join.
        """
        server = self.server
        if server.rooms.has_joined(conn):
            return False
        relay = self._relays.get(conn)
        if relay is not None and relay.joined:
            self._send(relay.home, {"k": FRAME, "n": self.node_id, "c": conn, "r": raw})
            return True
        join = self._join_session(raw)
        session_id = None if join is None else join[0]
        if session_id is None or (relay is not None and relay.session_id == session_id):
            if relay is None:
                return False
            self._send(relay.home, {"k": FRAME, "n": self.node_id, "c": conn, "r": raw})
            return True
        if relay is not None:  # a second join, for another room: route it afresh
            self._send(relay.home, {"k": GONE, "n": self.node_id, "c": conn})
            del self._relays[conn]
        if session_id in self._homed:
            return False
        if not self.healthy:  # until a beat succeeds again: placing now could split a room
            link.close(CLOSE_TRY_LATER, "redisUnavailable")
            return True
        hold = self._place_after - time.monotonic()
        if hold > 0:  # Redis just came back: let the homes take their leases back first
            await asyncio.sleep(hold)
        logger.debug("placing room %s for connection %d", session_id, conn)
        try:
            # bounded: a command caught in a Redis restart may never be answered
            async with asyncio.timeout(max(self.lease, 1.0)):
                home, epoch = await self._place(session_id)
        except Exception as exc:
            logger.warning("cannot place room %s: Redis: %s", session_id, exc)
            self._set_health(False, exc)
            link.close(CLOSE_TRY_LATER, "redisUnavailable")
            return True
        if not home:  # at max_sessions cluster-wide: refused as the rooms would
            assert join is not None
            refusal = RoomError(Denial.TOO_MANY_SESSIONS, sessionId=session_id)
            data = refusal.data("join")
            server.counts.error(refusal.code, "answer")
            link.write((error_frame(join[1], refusal.code, refusal.message, data),))
            return True
        if home == self.node_id:
            try:
                await self._take_home(session_id, epoch=epoch)
            except LoadRefused as exc:  # not served from scratch: the client comes back
                logger.warning("cannot take room %s over: %s", session_id, exc)
                link.close(CLOSE_TRY_LATER, "roomUnavailable")
                return True
            except Exception as exc:
                logger.warning("cannot load room %s: Redis: %s", session_id, exc)
                self._set_health(False, exc)
                link.close(CLOSE_TRY_LATER, "redisUnavailable")
                return True
            return False
        logger.debug("connection %d relayed to %s for room %s", conn, home, session_id)
        self._relays[conn] = _Relay(home, session_id)
        opening = {"k": OPEN, "n": self.node_id, "c": conn, "s": session_id}
        if epoch:  # a room with no journal yet: its home starts one with this epoch
            opening["e"] = epoch
        self._send(home, opening)
        self._send(home, {"k": FRAME, "n": self.node_id, "c": conn, "r": raw})
        return True

    def owed(self, conn: int) -> int:
        """Frames a relayed connection's requests made its home write since the last call.

        The transport charges them to the connection's ``max_fanout_per_second``
        bucket, as a lone server charges what its own requests made it write.
        """
        relay = self._relays.get(conn)
        if relay is None:
            return 0
        owed, relay.owed = relay.owed, 0
        return owed

    def on_disconnect(self, conn: int) -> None:
        """A local connection ended: tell its room's home, if it was relayed."""
        relay = self._relays.pop(conn, None)
        if relay is not None:
            self._send(relay.home, {"k": GONE, "n": self.node_id, "c": conn})

    def _join_session(self, raw: str) -> tuple[str, int | str | None] | None:
        """The room a ``join`` frame's token names, and the request id.

        None if not a join or its token is not valid (the rooms answer it).
        """
        if '"join"' not in raw:
            return None
        from roomsignal.tokens import TokenInvalid, verify

        try:
            frame = json.loads(raw)
            if frame.get("method") != "join":
                return None
            token = frame["params"]["token"]
            if not isinstance(token, str):
                return None
            return verify(token, self.server.secret).sid, frame.get("id")
        except (ValueError, TypeError, KeyError, AttributeError, TokenInvalid):
            return None  # the rooms give the exact answer

    async def _place(self, session_id: str) -> tuple[str, str | None]:
        """The room's home (placing it on the least-loaded node if new), and an epoch.

        "" when the room is new and ``max_sessions`` rooms are live cluster-wide.
        The epoch is set when the room was placed with no journal in Redis:
        its home starts the journal with it instead of loading (a new room).
        """
        redis = self._redis
        if redis is None:
            raise ConnectionError("the cluster is closed")
        home_prefix = self._key("home") + ":"
        journal = self._journal
        epoch = secrets.token_hex(8) if journal is not None else ""
        self.round_trips += 1
        home, fresh = await redis.eval(
            PLACE,
            4,
            self._key("home", session_id),
            self._key("rooms"),
            self._key("load"),
            self._key("room", session_id),
            self._key("node") + ":",
            int(time.time() * 1000),
            int(self.lease * 1000),
            self.server.config.max_sessions,
            home_prefix,
            epoch,
            int(journal.ttl * 1000) if journal is not None else 0,
        )
        home = home.decode() if isinstance(home, bytes) else str(home)
        return home, epoch if fresh == 1 else None

    # --- the home: messages from edges -----------------------------------------------

    async def _take_home(self, room: str, epoch: str | None = None) -> None:
        """Serve ``room`` here from now on; loads its seats from Redis first (a takeover).

        ``epoch``: the room was just placed with no journal, and this epoch
        set for it (``PLACE``): nothing to load. Raises if the load failed:
        the room is not served here until a later load succeeds.
        """
        journal, redis = self._journal, self._redis
        if epoch and journal is not None:
            journal.create(room, epoch)
        elif journal is not None and not journal.holds(room):
            if redis is None:
                raise LoadRefused(f"room {room}: the node is closing")
            rooms = self.server.rooms
            assert isinstance(rooms, JournaledRooms)
            async with asyncio.timeout(max(self.lease, 1.0)):
                await journal.ensure(redis, room, rooms)
            self.server.counts.takeovers += 1
        self._homed[room] = 0.0

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["k"]
        server = self.server
        if kind in (OPEN, FRAME, GONE, DRAIN):
            key = (str(message["n"]), int(message["c"]))
            if kind == DRAIN:  # the edge drains: close its client, behind what was sent it
                remote = server._links.get(self._remote.get(key, 0))
                if remote is not None:
                    remote.close(CLOSE_NODE_LOST, "nodeDraining")
                else:
                    close = {"k": CLOSE, "c": key[1], "code": CLOSE_NODE_LOST}
                    self._send(key[0], {**close, "reason": "nodeDraining"})
                return
            if self._draining and kind == OPEN:  # our rooms are leaving: go to their new home
                close = {"k": CLOSE, "c": key[1], "code": CLOSE_NODE_LOST, "reason": "nodeDraining"}
                self._send(key[0], close)
                return
            if self._draining and kind == FRAME:
                return  # frozen (drain): an unanswered request is sent again after the resume
            if kind == OPEN:
                conn = next(server._conn_ids)
                server._links[conn] = RemoteLink(self._send, key[0], key[1])
                self._remote[key] = conn
                self._homed[str(message["s"])] = 0.0
            elif kind == FRAME:
                conn = self._remote.get(key, 0)
                if conn:
                    joined = server.rooms.has_joined(conn)
                    sent = server._sent
                    burst = server._on_frame(server.rooms, conn, str(message["r"]))
                    self._charge(conn, server._sent - sent)
                    if not joined and server.rooms.has_joined(conn):  # behind the join result
                        self._send(key[0], {"k": JOINED, "c": key[1]})
                    if burst is not None:
                        self._spawn(server._stream(server.rooms, conn, burst))
            else:
                self._drop_remote(key)
            return
        link = server._links.get(int(message["c"]))
        if link is None or isinstance(link, RemoteLink):
            return
        if kind == WRITE:  # in Redis already: the home journaled it before sending it
            owed = message.get("p")
            relay = self._relays.get(int(message["c"]))
            if relay is not None and isinstance(owed, int) and owed > 0:
                relay.owed += owed
            if isinstance(link, HeldLink):
                link.write_through(message["f"])
            else:
                link.write(message["f"])
        elif kind == JOINED:
            relay = self._relays.get(int(message["c"]))
            if relay is not None:
                relay.joined = True
        elif kind == CLOSE:
            link.close(int(message["code"]), str(message["reason"]))
        elif kind == ABORT:
            link.abort()

    def _charge(self, conn: int, cost: int) -> None:
        """Tell a relayed connection's edge what its request made this home write.

        The count rides on the latest message to that connection still
        waiting to be published (its answer, usually); else on its next one.
        """
        link = self.server._links.get(conn)
        if not cost or not isinstance(link, RemoteLink):
            return
        link.owed += cost
        outbox = self._outbox
        for at in range(len(outbox) - 1, max(len(outbox) - _CHARGE_SCAN, 0) - 1, -1):
            node, message = outbox[at]
            if node == link.node and message["k"] == WRITE and message["c"] == link.remote_conn:
                message["p"] = message.get("p", 0) + link.owed  # not encoded yet: no copy
                link.owed = 0
                return

    def _refuse_open(self, message: dict[str, Any]) -> None:
        """An edge's connection for a room that could not be loaded: closed with 1013."""
        with contextlib.suppress(KeyError, TypeError, ValueError):
            node, conn = str(message["n"]), int(message["c"])
            self._send(
                node, {"k": CLOSE, "c": conn, "code": CLOSE_TRY_LATER, "reason": "roomUnavailable"}
            )

    def _drop_remote(self, key: tuple[str, int]) -> None:
        conn = self._remote.pop(key, None)
        if conn is not None:
            server = self.server
            server._links.pop(conn, None)
            server._apply(server.rooms.disconnect(conn, time.time()))

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(self._tasks_done)

    def _tasks_done(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("relay task failed", exc_info=task.exception())

    # --- peers lost (a dead node, or Redis gone) ---------------------------------------

    def _drop_peer(self, node: str | None) -> None:
        """Drop every relayed connection with ``node`` (every one when None)."""
        server = self.server
        for conn, relay in list(self._relays.items()):
            if node is None or relay.home == node:
                del self._relays[conn]
                link = server._links.get(conn)
                if link is not None:
                    link.close(CLOSE_NODE_LOST, "nodeLost")
        for key in [k for k in self._remote if node is None or k[0] == node]:
            self._drop_remote(key)

    def _give_up(self, room: str) -> None:
        """Drop every connection of a room this node no longer homes: they rejoin its home."""
        self._homed.pop(room, None)
        if self._journal is not None:
            self._journal.forget(room)
        server = self.server
        if server.media_node is not None:  # its media goes from this node's media node
            server._apply(server.rooms.media_released(room))  # (before its seats go)
        # forgotten here, or its stale seats would be written over the real
        # home's journal if the room ever came back to this node
        for conn in server.rooms.forget(room):
            link = server._links.get(conn)
            if link is not None:
                link.abort()

    def _set_health(self, healthy: bool, why: object = None) -> None:
        if healthy and not self.healthy:
            # The homes take their leases back within a beat of Redis coming
            # back (empty after a restart); placing before that could give a
            # room a second home.
            self._place_after = time.monotonic() + self.lease
            # a normal start is no news; a recovery is
            level = logging.WARNING if self._lost_redis else logging.INFO
            logger.log(level, "Redis reachable: node %s serving the cluster", self.node_id)
        elif not healthy and (self.healthy or not self._lost_redis):
            self._lost_redis = True
            logger.error("Redis unreachable (%s): refusing new rooms, /healthz 503", why)
        self.healthy = healthy

    def _relay_broken(self, why: object) -> None:
        """Relay messages may have been lost (pub/sub or a publish failed): drop every relay."""
        self._set_health(False, why)
        if self._relays or self._remote:
            logger.warning("the relay through Redis broke: dropping every relayed connection")
            self._drop_peer(None)

    # --- tasks ----------------------------------------------------------------------

    def _send(self, node: str, message: dict[str, Any]) -> None:
        counts = self.server.counts
        counts.bump(counts.relayed, ("sent", message["k"]))
        if message["k"] in (FRAME, WRITE):  # stamped for the relay latency (/metrics)
            message["t"] = round(time.time(), 4)
        self._outbox.append((node, message))
        self._hurry()

    def _hurry(self) -> None:
        """A pipeline is due now (relay messages, or frames held for the journal)."""
        self._wake.set()
        self._urgent.set()

    def _release(self, links: list[HeldLink]) -> None:
        """Write what the links held; a link that turned slow meanwhile is evicted."""
        server = self.server
        for link in links:
            link.release()
            if link.slow:
                server._slow.append(link.conn)
        server._evict_slow()

    async def _flush(self, redis: Redis) -> None:
        batch, self._outbox = self._outbox, []
        journal, rooms, gate = self._journal, self.server._rooms, self._gate
        # The rooms' changes go first in the pipeline: whatever a relayed
        # client is sent in this batch is in Redis before it (a takeover
        # resumes from there). What this node's own clients were written
        # since the last collect waits until this pipeline has run.
        writes = journal.collect(rooms._sessions) if journal and journal.dirty and rooms else []
        held = gate.take() if gate is not None else []
        if not batch and not writes:
            self._release(held)  # the pipelines that covered them have run
            return
        if gate is not None:
            gate.inflight = bool(writes) and self.healthy
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for _, keys, args in writes:
                    pipe.eval(JOURNAL, len(keys), *keys, *args)
                for node, message in batch:
                    pipe.publish(self._key("to", node), encode_message(message))
                self.round_trips += len(batch) + len(writes)
                try:
                    results = await pipe.execute(raise_on_error=False)
                except BaseException:
                    if journal is not None:
                        journal.failed(writes)
                    raise
            if journal is not None and writes:
                for room in journal.written(writes, results[: len(writes)]):
                    self._give_up(room)  # before the release: its links are dropped
        finally:
            # Released even when Redis failed: a home keeps serving its own
            # clients through an outage (nothing can be journaled then).
            if gate is not None:
                gate.inflight = False
            self._release(held)
        receivers = results[len(writes) :]
        for count in receivers:
            if isinstance(count, Exception):
                raise count
        for (node, message), count in zip(batch, receivers, strict=True):
            if count == 0:  # nobody listens on that node's channel: the message is lost
                self._undelivered(node, message)

    def _undelivered(self, node: str, message: dict[str, Any]) -> None:
        """A relay message reached no subscriber: end the relayed connection it was for.

        The peer is dead or between subscriptions (Redis just came back); the
        client reconnects and resumes rather than wait for an answer that
        will never come.
        """
        if message["k"] == TAKE:
            return  # its lease lapses unrenewed; the room's next join places it anew
        conn = int(message["c"])
        if message["k"] in (OPEN, FRAME, GONE, DRAIN):  # we are the edge
            if self._relays.pop(conn, None) is not None:
                link = self.server._links.get(conn)
                if link is not None:
                    logger.warning("node %s is not listening: closing a relayed client", node)
                    link.close(CLOSE_NODE_LOST, "nodeLost")
        else:  # we are the home: the edge is gone
            self._drop_remote((node, conn))

    async def _run_writer(self) -> None:
        while True:
            await self._wake.wait()
            if not self._outbox and not (self._gate and self._gate.waiting):
                # the journal alone: let the next changes join it
                self._urgent.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_COALESCE):
                        await self._urgent.wait()
            self._wake.clear()
            redis = self._redis
            if redis is None:
                return
            started = time.perf_counter()
            try:
                async with self._flushing, asyncio.timeout(max(self.lease, 1.0)):
                    await self._flush(redis)
            except Exception as exc:
                self._relay_broken(exc)
            else:
                self.server.counts.relay_flush.observe(time.perf_counter() - started)

    async def _run_reader(self) -> None:
        delay = 0.05
        while self._redis is not None:
            redis = self._redis
            try:
                async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self._key("to", self.node_id))
                    self._subscribed.set()
                    delay = 0.05
                    while self._redis is not None:
                        # bounded, so that a closed cluster is seen even if a
                        # cancellation got lost inside redis-py
                        item = await pubsub.get_message(timeout=_CANCEL_AGAIN)
                        if item is None or item.get("type") != "message":
                            continue
                        message = decode_message(item["data"])
                        if message is None:
                            logger.warning("ignoring a malformed relay message")
                            continue
                        counts = self.server.counts
                        counts.bump(counts.relayed, ("received", str(message["k"])))
                        stamp = message.get("t")
                        if isinstance(stamp, float | int):  # the sender's wall clock
                            counts.relay_latency.observe(max(0.0, time.time() - stamp))
                        room, epoch = message.get("s"), message.get("e")
                        if message["k"] == TAKE and isinstance(room, str):
                            try:  # a draining home gave us the lease: load the room now
                                if not self._draining:
                                    await self._take_home(room)
                            except Exception as exc:  # a client's join loads it again
                                logger.error("cannot load room %s from Redis: %s", room, exc)
                            continue
                        if message["k"] == OPEN and isinstance(room, str):
                            try:  # the room's seats first, if this node takes it over
                                await self._take_home(
                                    room, epoch=epoch if isinstance(epoch, str) else None
                                )
                            except Exception as exc:
                                # Not served from scratch (that would overwrite its
                                # journal): the client is told to come back later.
                                logger.error("cannot load room %s from Redis: %s", room, exc)
                                self._refuse_open(message)
                                continue
                        try:
                            self._on_message(message)
                        except Exception:
                            logger.exception("internal error while relaying")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._relay_broken(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.lease / 3)

    async def _run_beats(self) -> None:
        # A beat that fails must not end the task: a node that stops renewing
        # its leases while it serves would let another node take its rooms.
        while self._redis is not None and not self._draining:
            await asyncio.sleep(self.lease / 3)
            if self._redis is None or self._draining:
                return
            try:
                await self._beat_once()
            except Exception as exc:
                logger.exception("a cluster beat failed")
                self._set_health(False, exc)

    async def _beat_once(self) -> None:
        """Renew liveness, load and leases; drop peers that died; release empty rooms."""
        redis = self._redis
        if redis is None:
            return
        now = time.time()
        sessions = self.server.rooms._sessions
        for room in list(self._homed):
            if room in sessions:
                self._homed[room] = 0.0
            elif not self._homed[room]:
                self._homed[room] = now
        stale = [r for r, t in self._homed.items() if t and now - t > self.lease]
        rooms = [r for r in self._homed if r not in stale]
        peers = sorted({r.home for r in self._relays.values()} | {k[0] for k in self._remote})
        home_prefix = self._key("home") + ":"
        keys = [self._key("node", self.node_id), self._key("load"), self._key("rooms")]
        keys += [home_prefix + r for r in rooms]
        try:
            async with asyncio.timeout(self.lease * 2 / 3):  # a busy loop is no outage
                if stale:
                    self.round_trips += 1
                    stale_keys = [self._key("rooms"), *(home_prefix + r for r in stale)]
                    await redis.eval(
                        RELEASE, len(stale_keys), *stale_keys, self.node_id, home_prefix
                    )
                self.round_trips += 1
                held, alive = await redis.eval(
                    BEAT,
                    len(keys),
                    *keys,
                    self.node_id,
                    int(self.lease * 1000),
                    len(self.server._links),
                    int(self.lease * 1000),
                    int(now * 1000),
                    home_prefix,
                    *peers,
                )
        except Exception as exc:
            self._set_health(False, exc)
            return
        for room in stale:
            self._homed.pop(room, None)
            if self._journal is not None:
                self._journal.forget(room)
        self._set_health(True)
        for room, ours in zip(rooms, held, strict=True):
            if not ours:
                logger.error("lost the lease of room %s to another node: dropping it", room)
                self._give_up(room)
        for peer, up in zip(peers, alive, strict=True):
            if not up:
                logger.warning("node %s is gone: dropping its relayed connections", peer)
                self._drop_peer(peer)
        if self._journal is not None:
            self._journal.tick(now)
