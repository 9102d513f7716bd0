"""The media node adapter: the server as a client of Janus's VideoRoom plugin.

``JanusNode`` speaks Janus's JSON API over one WebSocket (subprotocol
``janus-protocol``): one Janus session per server, a handle per upstream and
per subscription, transactions matched by id, a keepalive every
``keepalive`` seconds (Janus drops a session after 60 s of silence), and a
bound (``timeout``) on every request. It carries out the rooms' ``MediaOp``
effects, in order per exchange, and reports what Janus says through the
``MediaSink`` it was given (the transport, which feeds the rooms). A lost
connection fails every request in flight (801), reports the loss, and
reconnects with backoff.

Janus's answers map onto the catalog in one place, ``failure_of`` (the table
of docs/media.md): an SDP Janus refuses is 303, anything else it refuses or
says that the server cannot use is 802 with ``mediaNodeCode`` and
``mediaNodeReason``; no answer (unreachable, closed, timed out) is 801.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from roomsignal.server._denials import Denial
from roomsignal.server._state import MediaFailure, MediaOp

__all__ = ["JanusNode", "MediaSink", "failure_of"]

logger = logging.getLogger("roomsignal.server.media")

_PLUGIN = "janus.plugin.videoroom"
# Janus codes that mean "this SDP is unusable": core 464 (unknown jsep type),
# 465 (invalid SDP), VideoRoom 431 (invalid SDP type), 437 (invalid SDP).
_SDP_REFUSED = frozenset({464, 465, 431, 437})
_MAX_PUBLISHERS = 1 << 20  # never the limit: the server's own limits are


class MediaSink(Protocol):
    """Where the adapter reports what Janus says (the transport, feeding the rooms)."""

    def media_done(self, op: MediaOp, sdp: str | None, failure: MediaFailure | None) -> None: ...
    def media_up(self, key: str) -> None: ...
    def media_candidate(
        self, key: str, candidate: str, sdp_mid: str | None, sdp_m_line_index: int | None
    ) -> None: ...
    def media_hangup(self, key: str) -> None: ...
    def media_lost(self) -> None: ...
    def media_back(self) -> None: ...


class JanusError(Exception):
    """A request to Janus failed; ``failure`` is the catalog's answer to it."""

    def __init__(self, failure: MediaFailure) -> None:
        super().__init__(failure.message or failure.denial.value.message)
        self.failure = failure


def unreachable(reason: str, message: str | None = None) -> JanusError:
    return JanusError(MediaFailure(Denial.MEDIA_NODE_REQUEST, message, {"reason": reason}))


def failure_of(answer: Any, *, carries_sdp: bool) -> MediaFailure:
    """The catalog's answer to a Janus message that is not the success expected.

    The one table (docs/media.md, "Janus errors"): a Janus error code about
    an SDP, on a request that carried the participant's SDP, is 303; every
    other error Janus states is 802 with its code and reason; a message
    that is not Janus's (or not the expected kind) is 802 without them.
    """
    code: Any = None
    reason: Any = None
    if isinstance(answer, dict):
        if answer.get("janus") == "error" and isinstance(answer.get("error"), dict):
            code, reason = answer["error"].get("code"), answer["error"].get("reason")
        else:
            data = _plugin_data(answer)
            if data is not None and "error_code" in data:
                code, reason = data.get("error_code"), data.get("error")
    extra: dict[str, Any] = {}
    if isinstance(code, int) and not isinstance(code, bool):
        extra["mediaNodeCode"] = code
    if isinstance(reason, str):
        extra["mediaNodeReason"] = reason
    if carries_sdp and extra.get("mediaNodeCode") in _SDP_REFUSED:
        return MediaFailure(
            Denial.MEDIA_REFUSED, reason if isinstance(reason, str) else None, extra
        )
    return MediaFailure(Denial.MEDIA_NODE_RESPONSE, None, extra)


def _plugin_data(answer: dict[str, Any]) -> dict[str, Any] | None:
    plugindata = answer.get("plugindata")
    if isinstance(plugindata, dict) and isinstance(plugindata.get("data"), dict):
        data: dict[str, Any] = plugindata["data"]
        return data
    return None


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[dict[str, Any]]
    ack_final: bool  # keepalive and trickle end at their ack; messages go on to an event


@dataclass(slots=True)
class _Key:
    """One exchange's media on Janus: its handle, and the chain of its ops."""

    handle: int | None = None
    room: str = ""
    ops: list[MediaOp] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None


class JanusNode:
    """A connection to one Janus server, driving its VideoRoom for the rooms.

    ``start()`` makes a first connection attempt (bounded by ``timeout``)
    and keeps reconnecting in the background; ``healthy`` says whether a
    Janus session is open. ``submit(op)`` never blocks nor raises: its
    outcome reaches the sink. ``close()`` ends every task and the session.
    """

    def __init__(
        self,
        url: str,
        sink: MediaSink,
        *,
        api_secret: str | None = None,
        timeout: float = 5.0,
        keepalive: float = 25.0,
        max_backoff: float = 5.0,
    ) -> None:
        self.url = url
        self._sink = sink
        self._secret = api_secret
        self._timeout = timeout
        self._keepalive = keepalive
        self._max_backoff = max_backoff
        self._ws: ClientConnection | None = None
        self._session: int | None = None
        self._pending: dict[str, _Pending] = {}
        self._keys: dict[str, _Key] = {}
        self._by_handle: dict[int, str] = {}
        self._rooms: dict[str, asyncio.Future[int]] = {}  # session id -> its Janus room
        self._room_keys: dict[str, set[str]] = {}  # session id -> exchanges in its room
        self._feeds: dict[str, int] = {}  # upstream id -> Janus feed id
        self._room_ids = itertools.count(random.randint(1, 2**40))
        self._runner: asyncio.Task[None] | None = None
        self._closer: asyncio.Future[None] | None = None  # a close started by a Janus event
        self._first = asyncio.Event()
        self._up = asyncio.Event()  # set while a Janus session is open
        self._sent = asyncio.Event()  # set at each request sent (``wait_in_flight``)
        self._closing = False

    @property
    def healthy(self) -> bool:
        """Whether a Janus session is open (requests can be made)."""
        return self._session is not None

    @property
    def in_flight(self) -> int:
        """How many requests wait for Janus's answer."""
        return len(self._pending)

    async def wait_idle(self) -> None:
        """Return once every op submitted so far has been carried out (for tests)."""
        while True:
            workers = [k.worker for k in self._keys.values() if k.worker and not k.worker.done()]
            if not workers:
                return
            await asyncio.wait(workers)

    async def wait_healthy(self) -> None:
        """Return once a Janus session is open (at once if it is)."""
        await self._up.wait()

    async def wait_in_flight(self) -> None:
        """Return once a request waits for Janus's answer (for tests)."""
        while not self._pending:
            self._sent.clear()
            await self._sent.wait()

    async def start(self) -> None:
        """Connect (waiting at most ``timeout`` for the first attempt), then stay connected."""
        self._closing = False
        self._runner = asyncio.create_task(self._run())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await self._first.wait()

    async def close(self) -> None:
        """Hang up every handle, end the session and every task; idempotent."""
        self._closing = True
        workers = [k.worker for k in self._keys.values() if k.worker is not None]
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        ws, session = self._ws, self._session
        if ws is not None and session is not None:
            # Rooms outlive the session in Janus: destroy ours, then the session.
            rooms = self._made_rooms()
            self._rooms.clear()
            self._room_keys.clear()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    for room in rooms:
                        await self._destroy_room(room)
                    await self._request({"janus": "destroy"}, timeout=1.0)
        if self._closer is not None:
            with contextlib.suppress(Exception):
                await self._closer
            self._closer = None
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        self._keys.clear()
        self._by_handle.clear()

    # --- the connection ------------------------------------------------------------

    async def _run(self) -> None:
        delay = 0.05
        while not self._closing:
            try:
                async with connect(
                    self.url,
                    subprotocols=[Subprotocol("janus-protocol")],
                    open_timeout=self._timeout,
                    close_timeout=1.0,
                    compression=None,
                    max_size=2**22,
                ) as ws:
                    self._ws = ws
                    reader = asyncio.create_task(self._read(ws))
                    try:
                        answer = await self._request({"janus": "create"}, session=False)
                        data = answer.get("data")
                        if answer.get("janus") != "success" or not isinstance(data, dict):
                            raise JanusError(failure_of(answer, carries_sdp=False))
                        self._session = int(data["id"])
                        stale = self._made_rooms()
                        self._rooms.clear()
                        self._room_keys.clear()
                        self._feeds.clear()
                        logger.info("media node %s: session %d", self.url, self._session)
                        if stale:  # before anything is served again
                            await self._destroy_stale(stale)
                        self._sink.media_back()
                        self._up.set()
                        self._first.set()
                        delay = 0.05
                        await self._keep_alive(reader)
                    finally:
                        reader.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await reader
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("media node %s unreachable: %s", self.url, exc)
            finally:
                self._ws = None
                self._lost()
            self._first.set()
            if self._closing:
                return
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self._max_backoff)

    async def _keep_alive(self, reader: asyncio.Task[None]) -> None:
        while not reader.done():
            done, _ = await asyncio.wait({reader}, timeout=self._keepalive)
            if done:
                return
            try:
                await self._request({"janus": "keepalive"}, ack_final=True)
            except JanusError as exc:
                logger.warning("media node %s missed a keepalive: %s", self.url, exc)
                if self._ws is not None:
                    await self._ws.close()
                return

    def _lost(self) -> None:
        """The connection is gone: fail what is in flight, drop every handle, tell the rooms."""
        had_session = self._session is not None
        self._session = None
        self._up.clear()
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if not entry.future.done():
                entry.future.set_exception(unreachable("connectionClosed"))
        for key in self._keys.values():
            key.handle = None
        self._by_handle.clear()
        if had_session and not self._closing:
            logger.warning("media node %s lost", self.url)
            self._sink.media_lost()

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    logger.warning("media node sent a frame that is not JSON")
                    message = None
                if not isinstance(message, dict):
                    self._junk(message)
                    continue
                transaction = message.get("transaction")
                entry = self._pending.get(transaction) if isinstance(transaction, str) else None
                if entry is not None:
                    if message.get("janus") == "ack" and not entry.ack_final:
                        continue
                    del self._pending[transaction]  # type: ignore[arg-type]
                    if not entry.future.done():
                        entry.future.set_result(message)
                    continue
                self._event(message)

    def _junk(self, message: Any) -> None:
        """A frame no request can be matched with: every request in flight gets 802."""
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            if not entry.future.done():
                entry.future.set_exception(JanusError(failure_of(message, carries_sdp=False)))

    def _event(self, message: dict[str, Any]) -> None:
        kind = message.get("janus")
        if kind == "timeout" and message.get("session_id") == self._session:
            # Janus ended our session (keepalives missed): start again.
            logger.warning("media node %s timed our session out", self.url)
            if self._ws is not None:
                self._closer = asyncio.ensure_future(self._ws.close())
            return
        sender = message.get("sender")
        key = self._by_handle.get(sender) if isinstance(sender, int) else None
        if key is None:
            return
        if kind == "webrtcup":
            self._sink.media_up(key)
        elif kind == "hangup":
            logger.info("media node hung up %s: %s", key, message.get("reason"))
            self._sink.media_hangup(key)
        elif kind == "trickle":
            candidate = message.get("candidate")
            if isinstance(candidate, dict):
                if candidate.get("completed"):
                    self._sink.media_candidate(key, "", None, None)
                elif isinstance(candidate.get("candidate"), str):
                    index = candidate.get("sdpMLineIndex")
                    mid = candidate.get("sdpMid")
                    self._sink.media_candidate(
                        key,
                        candidate["candidate"],
                        mid if isinstance(mid, str) else None,
                        index if isinstance(index, int) else None,
                    )

    async def _request(
        self,
        body: dict[str, Any],
        *,
        session: bool = True,
        ack_final: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one Janus request and return its final answer (raises JanusError)."""
        ws = self._ws
        if ws is None or (session and self._session is None):
            raise unreachable("unreachable", "the media node is unreachable")
        transaction = secrets.token_hex(8)
        message = dict(body, transaction=transaction)
        if session:
            message["session_id"] = self._session
        if self._secret:
            message["apisecret"] = self._secret
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = _Pending(future, ack_final)
        try:
            await ws.send(json.dumps(message))
            self._sent.set()
            async with asyncio.timeout(timeout or self._timeout):
                return await future
        except ConnectionClosed:
            raise unreachable("connectionClosed") from None
        except TimeoutError:
            raise unreachable("timeout", "the media node did not answer in time") from None
        finally:
            self._pending.pop(transaction, None)

    # --- ops -------------------------------------------------------------------------

    def submit(self, op: MediaOp) -> None:
        """Queue ``op`` behind the ops of its exchange; its outcome reaches the sink."""
        key = self._keys.get(op.key)
        if key is None:  # (a hangup too: its exchange may still count in its room)
            key = self._keys[op.key] = _Key(room=op.room)
        key.ops.append(op)
        if key.worker is None or key.worker.done():
            key.worker = asyncio.create_task(self._work(op.key, key))

    async def _work(self, name: str, key: _Key) -> None:
        while key.ops:
            op = key.ops.pop(0)
            sdp: str | None = None
            failure: MediaFailure | None = None
            try:
                sdp = await self._carry_out(op, key)
            except JanusError as exc:
                failure = exc.failure
            except Exception:  # a bug here must not stop the chain
                logger.exception("media node op %s on %s failed", op.kind, op.key)
                failure = MediaFailure(Denial.MEDIA_NODE_RESPONSE)
            if op.kind == "hangup":
                key.ops.clear()
                self._keys.pop(name, None)
                return
            if failure is not None and op.kind == "trickle":
                logger.info("media node refused a candidate on %s: %s", op.key, failure)
                continue
            self._sink.media_done(op, sdp, failure)
        if key.handle is None and self._keys.get(name) is key and not key.ops:
            self._keys.pop(name, None)

    async def _carry_out(self, op: MediaOp, key: _Key) -> str | None:
        if op.kind == "hangup":
            await self._detach(key)
            self._feeds.pop(op.key, None)
            await self._release_room(op.room, op.key)
            return None
        if op.kind == "trickle":
            if key.handle is None:
                return None
            if op.candidate:
                candidate: dict[str, Any] = {"candidate": op.candidate}
                if op.sdp_mid is not None:
                    candidate["sdpMid"] = op.sdp_mid
                if op.sdp_m_line_index is not None:
                    candidate["sdpMLineIndex"] = op.sdp_m_line_index
            else:
                candidate = {"completed": True}
            await self._handle_request(key, {"janus": "trickle", "candidate": candidate}, True)
            return None
        if op.kind == "publish":
            room = await self._room(op.room, op.key)
            await self._attach(op.key, key)
            feed = self._feeds.setdefault(op.key, random.randint(1, 2**40))
            await self._message(
                key,
                {"request": "join", "ptype": "publisher", "room": room, "id": feed},
                expect="joined",
            )
            answer = await self._message(
                key,
                {"request": "publish"},
                jsep={"type": "offer", "sdp": op.sdp},
                expect="event",
                want_jsep="answer",
            )
            return answer
        if op.kind == "subscribe":
            assert op.feed is not None
            room = await self._room(op.room, op.key)
            fed_by = self._feeds.get(op.feed)
            if fed_by is None:
                raise JanusError(MediaFailure(Denial.MEDIA_NODE_RESPONSE))
            await self._attach(op.key, key)
            return await self._message(
                key,
                {
                    "request": "join",
                    "ptype": "subscriber",
                    "room": room,
                    "streams": [{"feed": fed_by}],
                },
                expect="attached",
                want_jsep="offer",
            )
        if op.kind == "start":
            await self._message(
                key, {"request": "start"}, jsep={"type": "answer", "sdp": op.sdp}, expect="event"
            )
            return None
        raise ValueError(f"unknown media op {op.kind!r}")

    async def _room(self, session_id: str, name: str) -> int:
        """The Janus room of a session, made on first use (by one op; the others wait)."""
        self._room_keys.setdefault(session_id, set()).add(name)
        pending = self._rooms.get(session_id)
        if pending is not None:
            return await asyncio.shield(pending)
        pending = asyncio.get_running_loop().create_future()
        self._rooms[session_id] = pending
        try:
            room = await self._create_room()
        except BaseException as exc:
            if self._rooms.get(session_id) is pending:
                del self._rooms[session_id]
            if isinstance(exc, JanusError):
                pending.set_exception(exc)
                pending.exception()  # (retrieved: no one else may be waiting)
            else:
                pending.cancel()
            raise
        pending.set_result(room)
        return room

    async def _create_room(self) -> int:
        """A new VideoRoom, big enough never to refuse a publisher the server admitted."""
        room = next(self._room_ids)
        answer = await self._one_shot(
            {
                "request": "create",
                "room": room,
                "permanent": False,
                "publishers": _MAX_PUBLISHERS,
                "audiocodec": "opus",
                "videocodec": "vp8,h264",
                "notify_joining": False,
            }
        )
        data = _plugin_data(answer)
        if answer.get("janus") != "success" or data is None or data.get("videoroom") != "created":
            raise JanusError(failure_of(answer, carries_sdp=False))
        logger.debug("media node room %d created", room)
        return room

    async def _release_room(self, session_id: str, name: str) -> None:
        """``name`` no longer uses its session's room: destroy the room when no one does."""
        users = self._room_keys.get(session_id)
        if users is None:
            return
        users.discard(name)
        if users:
            return
        del self._room_keys[session_id]
        pending = self._rooms.pop(session_id, None)
        if pending is None or not pending.done() or pending.cancelled() or pending.exception():
            return
        await self._destroy_room(pending.result())

    def _made_rooms(self) -> list[int]:
        """The Janus rooms this adapter made and has not destroyed yet."""
        return [
            f.result()
            for f in self._rooms.values()
            if f.done() and not f.cancelled() and f.exception() is None
        ]

    async def _destroy_stale(self, rooms: list[int]) -> None:
        """Destroy the rooms made on a Janus session that was lost.

        Janus keeps a room after the session that made it ends (only its
        handles go): when the same Janus is still there (a missed keepalive,
        a dropped connection), they would stay until it restarts. After a
        restart they are gone already, and Janus says so (logged, harmless).
        """
        done = await asyncio.gather(*(self._destroy_room(room) for room in rooms))
        logger.info(
            "media node %s: %d of %d room(s) of the lost session destroyed",
            self.url,
            sum(done),
            len(rooms),
        )

    async def _destroy_room(self, room: int) -> bool:
        """Destroy one VideoRoom; whether Janus did (never raises)."""
        try:
            answer = await self._one_shot({"request": "destroy", "room": room})
        except JanusError as exc:
            logger.info("media node room %d not destroyed: %s", room, exc)
            return False
        data = _plugin_data(answer)
        if data is None or data.get("videoroom") != "destroyed":
            logger.info("media node room %d not destroyed: %s", room, data)
            return False
        logger.debug("media node room %d destroyed", room)
        return True

    async def _one_shot(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous VideoRoom request on a handle of its own (create, destroy)."""
        key = _Key()
        await self._attach(None, key)
        try:
            return await self._handle_request(key, {"janus": "message", "body": body}, False)
        finally:
            await self._detach(key)

    async def _attach(self, name: str | None, key: _Key) -> None:
        if key.handle is not None:
            return
        answer = await self._request({"janus": "attach", "plugin": _PLUGIN})
        data = answer.get("data")
        if answer.get("janus") != "success" or not isinstance(data, dict):
            raise JanusError(failure_of(answer, carries_sdp=False))
        handle = data.get("id")
        if not isinstance(handle, int):
            raise JanusError(failure_of(answer, carries_sdp=False))
        key.handle = handle
        if name is not None:
            self._by_handle[handle] = name

    async def _detach(self, key: _Key) -> None:
        handle, key.handle = key.handle, None
        if handle is None:
            return
        self._by_handle.pop(handle, None)
        with contextlib.suppress(JanusError):
            await self._request({"janus": "detach", "handle_id": handle})

    async def _handle_request(
        self, key: _Key, body: dict[str, Any], ack_final: bool
    ) -> dict[str, Any]:
        if key.handle is None:
            raise unreachable("connectionClosed")
        return await self._request(dict(body, handle_id=key.handle), ack_final=ack_final)

    async def _message(
        self,
        key: _Key,
        body: dict[str, Any],
        *,
        expect: str,
        jsep: dict[str, Any] | None = None,
        want_jsep: str | None = None,
    ) -> str | None:
        """A VideoRoom request; its answer's SDP when ``want_jsep``. Raises JanusError."""
        message: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            message["jsep"] = jsep
        answer = await self._handle_request(key, message, False)
        carries_sdp = jsep is not None
        data = _plugin_data(answer)
        if answer.get("janus") not in ("event", "success") or data is None:
            raise JanusError(failure_of(answer, carries_sdp=carries_sdp))
        if "error_code" in data or data.get("videoroom") != expect:
            raise JanusError(failure_of(answer, carries_sdp=carries_sdp))
        if want_jsep is None:
            return None
        answer_jsep = answer.get("jsep")
        if (
            not isinstance(answer_jsep, dict)
            or answer_jsep.get("type") != want_jsep
            or not isinstance(answer_jsep.get("sdp"), str)
        ):
            raise JanusError(failure_of(answer, carries_sdp=carries_sdp))
        sdp: str = answer_jsep["sdp"]
        return sdp
