"""A room's resume state in Redis, so that a home's death is a resume, not a state reset.

The home keeps, per room it homes, what a resume needs (docs/scaling.md,
"Takeover"), and the node that takes the room over loads it:

- ``P:room:SID`` -- a hash: ``epoch`` (the writing home's token), ``meta``
  (JSON: the streaming limit and the sync state), ``m:PID`` (a member's
  seat as JSON: name, type, roles, grants, metadata, secret, streams),
  ``q:PID`` (its last ``seq``) and ``a:PID:ID`` (the answer to its request
  ``ID``, JSON, from the seat's response cache: ``ORDER:frame``, so that a
  request sent again after a takeover is answered, not handled twice);
- ``P:replay:SID:PID`` -- a stream: the participant's numbered
  notifications, entry ID ``SEQ-0``, field ``b`` the notification's
  template (``_frames.template``), trimmed with ``XTRIM MINID`` to what
  the home's own replay buffer holds (so both bounds, count and bytes).

A seat's record also names its exchanges through a media node (``mx``), so
that the new home ends each of them (PROTOCOL.md section 10's rule for a lost
media node: the old home's media node is out of its reach).

Writes are one ``JOURNAL`` script per changed room, put in the cluster
writer's pipeline *before* that batch's relay messages, so whatever a client
on another node was sent is in Redis first. The script is fenced: it writes
only while the room's lease is this node's and the hash's ``epoch`` is the
one this home wrote (a new home sets a new epoch when it loads the room, so a
stale home can never write over it). Every key gets a TTL
(``resume_window + lease``), renewed by the writes and by a touch every
third of it; a room that ends deletes its keys.

``JournaledRooms`` is the cluster's ``Rooms``: it tells the journal which
rooms changed, restores a room loaded from Redis, and refuses (as a replay
gap) a resume whose ``lastSeq`` is beyond what the new home holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from roomsignal.protocol import JoinParams, JoinResult, Streams, SyncState
from roomsignal.server._config import ServerConfig
from roomsignal.server._logs import fields as log_fields
from roomsignal.server._rooms import Rooms
from roomsignal.server._state import (
    _STAMP,
    STREAMING_TYPES,
    Member,
    Out,
    ReplayBuffer,
    Session,
    _answer_size,
    _size,
)
from roomsignal.tokens import Grants, TokenClaims

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["JOURNAL", "LOAD", "Journal", "JournaledRooms", "LoadRefused"]

logger = logging.getLogger("roomsignal.server.cluster")

# KEYS: room hash, lease key, then participant streams.
# ARGV: node ID, epoch, TTL ms, ops JSON, reset ("1": start the hash afresh).
# -> 1 written; 0 the lease is not ours; -1 the room's data is gone (rewrite
# it all: reset); -2 another home's epoch is there (this home is stale). Ops: h (HSET pairs), d (HDEL
# fields), k (stream key indexes to DEL), x ([template, [[key index, seq]]]
# XADDs), m ([key index, min seq] XTRIM MINID), e (the room ended: DEL all).
JOURNAL = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local function del_all()
  redis.call('DEL', KEYS[1])
  for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch and epoch ~= ARGV[2] then return -2 end
if ARGV[5] == '1' then
  del_all()
  redis.call('HSET', KEYS[1], 'epoch', ARGV[2])
elseif not epoch then
  return -1
end
local ops = cjson.decode(ARGV[4])
if ops.e then del_all() return 1 end
local function chunked(command, list)
  for i = 1, #list, 1000 do
    redis.call(command, KEYS[1], unpack(list, i, math.min(i + 999, #list)))
  end
end
if ops.h then chunked('HSET', ops.h) end
if ops.d then chunked('HDEL', ops.d) end
if ops.k then for _, i in ipairs(ops.k) do redis.call('DEL', KEYS[i]) end end
if ops.x then
  for _, group in ipairs(ops.x) do
    for _, to in ipairs(group[2]) do
      redis.pcall('XADD', KEYS[to[1]], to[2] .. '-0', 'b', group[1])
    end
  end
end
if ops.m then
  for _, t in ipairs(ops.m) do redis.call('XTRIM', KEYS[t[1]], 'MINID', t[2] .. '-0') end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
for i = 3, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
"""

# KEYS: room hash, lease key. ARGV: new epoch, TTL ms, stream-key prefix, node ID.
# -> 0 if the lease is not ours; else {hash fields, {PID, stream entries, ...}},
# having set the new epoch (fencing the old home off) and renewed the TTLs.
LOAD = """
if redis.call('GET', KEYS[2]) ~= ARGV[4] then return 0 end
local fields = redis.call('HGETALL', KEYS[1])
local streams = {}
for i = 1, #fields, 2 do
  local f = fields[i]
  if string.sub(f, 1, 2) == 'm:' then
    local key = ARGV[3] .. string.sub(f, 3)
    streams[#streams + 1] = string.sub(f, 3)
    streams[#streams + 1] = redis.call('XRANGE', key, '-', '+')
    redis.call('PEXPIRE', key, ARGV[2])
  end
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {fields, streams}
"""

_UNSET: Any = object()  # a sync state never written


class LoadRefused(Exception):
    """A room could not be loaded because its lease is not this node's (or its load failed)."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


Shape = tuple[Streams | None, str | None, tuple[tuple[str, str], ...]]


def _media(member: Member) -> tuple[tuple[str, str], ...]:
    """A member's exchanges through a media node: ``(exchange id, publisher id)`` pairs.

    Its upstream first (its own id as the publisher), then its subscriptions.
    Journaled so that a takeover can end each of them (docs/scaling.md).
    """
    ids = []
    upstream = member.upstream
    if upstream is not None:
        ids.append((upstream.id, member.id))
    for exchange in member.exchanges.values():
        if exchange.upstream is not None:
            ids.append((exchange.id, exchange.publisher.id))
    return tuple(ids)


def _shape(member: Member) -> Shape:
    """What of a member's seat changes while it is seated (rewritten when it does)."""
    return member.streams, member.stream_id, _media(member)


def _record(member: Member, media: tuple[tuple[str, str], ...]) -> str:
    """A member's seat as JSON (everything but its seq and connection).

    Its exchanges through a media node (``mx``) are kept only by id: a new
    home cannot take them over, it ends them.
    """
    streams = member.streams
    record: dict[str, Any] = {
        "n": member.name,
        "t": member.type,
        "r": list(member.roles),
        "g": [member.grants.audio, member.grants.video, member.grants.create],
        "md": member.metadata,
        "s": member.secret,
        "st": None if streams is None else [streams.audio, streams.video],
        "si": member.stream_id,
        "mb": member.metadata_bytes,
    }
    if media:
        record["mx"] = [list(pair) for pair in media]
    return json.dumps(record, separators=(",", ":"))


def _journaled_media(fields: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """Each journaled member's exchanges through a media node (``mx``), by member id."""
    media: dict[str, list[tuple[str, str]]] = {}
    for name, raw in fields.items():
        if name.startswith("m:"):
            pairs = json.loads(raw).get("mx") or []
            if pairs:
                media[name[2:]] = [(str(x), str(p)) for x, p in pairs]
    return media


def _meta(session: Session) -> str:
    sync = session.sync_state
    return json.dumps(
        {
            "ms": session.max_streaming,
            "sync": None if sync is None else sync.model_dump(mode="json", by_alias=True),
        },
        separators=(",", ":"),
    )


class JournaledRooms(Rooms):
    """``Rooms`` that tell ``on_dirty`` which room changed, and load a room from Redis."""

    def __init__(
        self, secret: str, config: ServerConfig | None, on_dirty: Callable[[str], None]
    ) -> None:
        super().__init__(secret, config)
        self._on_dirty = on_dirty

    def _changed(self, session_id: str) -> None:
        self._on_dirty(session_id)

    def _resume(self, out: Out, conn: int, claims: TokenClaims, params: JoinParams) -> JoinResult:
        member = self._secrets.get(params.old_participant_secret or "")
        if (
            member is not None
            and member.session.id == claims.sid
            and (params.last_seq or 0) > member.seq
        ):
            # The client saw notifications this home does not have (they had
            # not reached Redis when the old home died): no exact resume.
            raise self._replay_gap(
                out,
                member,
                "lastSeq is past what this room's new home holds: the seat was ended, join afresh",
            )
        return super()._resume(out, conn, claims, params)

    def restore(
        self,
        session_id: str,
        fields: dict[str, str],
        streams: dict[str, list[tuple[int, str]]],
        now: float,
    ) -> dict[str, int] | None:
        """Seat the members of a room loaded from Redis; their seats wait ``resume_window``.

        Returns each restored member's seq, or None when there was nothing to
        restore (a new room) or the room is already held here.
        """
        meta_raw = fields.get("meta")
        if meta_raw is None or session_id in self._sessions:
            return None
        meta = json.loads(meta_raw)
        config = self._config
        session = Session(id=session_id, max_streaming=int(meta["ms"]))
        if meta.get("sync") is not None:
            session.sync_state = SyncState.model_validate(meta["sync"])
        seqs: dict[str, int] = {}
        members = []  # all parsed before any is seated: bad data seats nobody
        for name, raw in fields.items():
            if not name.startswith("m:"):
                continue
            member_id = name[2:]
            record = json.loads(raw)
            seq = int(fields.get("q:" + member_id, "0"))
            replay = ReplayBuffer(config.replay_buffer, config.replay_buffer_bytes)
            entries = streams.get(member_id, [])
            # only the run of consecutive seqs that ends at the member's seq
            start = len(entries)
            while start > 0 and entries[start - 1][0] == seq - (len(entries) - start):
                start -= 1
            for entry_seq, base in entries[start:]:
                replay.append(base, entry_seq, _size(base) + _STAMP + len(str(entry_seq)))
            replay.last = seq
            audio, video, create = record["g"]
            st = record["st"]
            member = Member(
                id=member_id,
                name=record["n"],
                type=record["t"],
                roles=tuple(record["r"]),
                grants=Grants(audio=audio, video=video, create=create),
                metadata=dict(record["md"] or {}),
                secret=record["s"],
                session=session,
                replay=replay,
                metadata_bytes=int(record["mb"]),
                streams=None if st is None else Streams(audio=st[0], video=st[1]),
                stream_id=record["si"],
                seq=seq,
            )
            members.append(member)
        answers: dict[str, list[tuple[int, int | str, str]]] = {}
        for name, raw in fields.items():
            if name.startswith("a:"):
                member_id, request_id = name[2:].split(":", 1)
                order, frame = raw.split(":", 1)
                answers.setdefault(member_id, []).append(
                    (int(order), json.loads(request_id), frame)
                )
        for member in members:
            kept = sorted(answers.get(member.id, ()), key=lambda answer: answer[0])
            if kept:
                member.answered = {request_id: frame for _, request_id, frame in kept}
                member.answered_bytes = sum(_answer_size(rid, frame) for _, rid, frame in kept)
        for member in members:
            if member.name in session.names or member.secret in self._secrets:
                continue  # cannot happen with one writer per epoch; never seat a twin
            session.members[member.id] = member
            session.names[member.name] = member
            if member.type in STREAMING_TYPES:
                session.streaming += 1
            session.metadata_bytes += member.metadata_bytes
            self._members[member.id] = member
            self._secrets[member.secret] = member
            member.resume_deadline = now + config.resume_window
            self._schedule(member.resume_deadline, "resume", member.id)
            seqs[member.id] = seq
        if not session.members:
            return None
        self._sessions[session_id] = session
        logger.info(
            "session %s taken over with %d seats",
            session_id,
            len(seqs),
            extra=log_fields(session_id),
        )
        return seqs


@dataclass(slots=True)
class _Room:
    """What this home last wrote for one room (and so, what Redis holds)."""

    epoch: str
    seqs: dict[str, int] = field(default_factory=dict)  # member -> last seq written
    shapes: dict[str, Shape] = field(default_factory=dict)
    sync: Any = _UNSET
    max_streaming: int | None = None
    touched: float = 0.0
    reset: bool = False  # what Redis holds is unknown: rewrite it all (same epoch)
    touch: bool = False  # renew the TTL of every key of the room on the next write
    # the response cache: member -> the a:PID:ID fields written, and the
    # (size, newest id) of its cache when last written (unchanged: not diffed)
    answers: dict[str, set[str]] = field(default_factory=dict)
    answer_marks: dict[str, Any] = field(default_factory=dict)
    order: int = 0  # the order of the last answer written (kept on a takeover)

    def forget_seats(self) -> None:
        """Forget what was written for each seat (its seq, shape and answers)."""
        self.seqs.clear()
        self.shapes.clear()
        self.answers.clear()
        self.answer_marks.clear()


Write = tuple[str, list[str], list[Any]]  # room, keys, args of one JOURNAL call


class Journal:
    """The rooms this node homes, as written to Redis; builds the ``JOURNAL`` calls.

    ``key(kind, name)`` makes a Redis key; ``wake()`` asks the cluster's
    writer to flush. ``ttl`` (seconds) is every key's time to live.
    """

    def __init__(
        self, key: Callable[[str, str], str], node_id: str, ttl: float, wake: Callable[[], None]
    ) -> None:
        self._key = key
        self._node_id = node_id
        self.ttl = ttl
        self._wake = wake
        self.dirty: set[str] = set()
        self._rooms: dict[str, _Room] = {}
        self._loading: dict[str, asyncio.Future[None]] = {}

    def mark(self, room: str) -> None:
        """Room ``room`` changed (``JournaledRooms`` calls this)."""
        if room in self._rooms:
            if not self.dirty:
                self._wake()
            self.dirty.add(room)

    def holds(self, room: str) -> bool:
        """Whether ``room`` was loaded (or created) here and is journaled."""
        return room in self._rooms

    def forget(self, room: str) -> None:
        """This node no longer homes ``room`` (released, or lost to another node)."""
        self._rooms.pop(room, None)
        self.dirty.discard(room)

    def tick(self, now: float) -> None:
        """Each beat: retry rooms to rewrite, renew the TTLs of rooms not touched lately."""
        for room, record in self._rooms.items():
            if now - record.touched > self.ttl / 3:
                record.touched = now
                record.touch = True
                self.dirty.add(room)
            elif record.reset:
                self.dirty.add(room)
        if self.dirty:
            self._wake()

    # --- loading on takeover -----------------------------------------------------

    def create(self, room: str, epoch: str) -> None:
        """Start journaling a new room whose epoch ``PLACE`` set (nothing to load)."""
        if room not in self._rooms and room not in self._loading:
            self._rooms[room] = _Room(epoch, touched=time.time())

    async def ensure(self, redis: Redis, room: str, rooms: JournaledRooms) -> None:
        """Load ``room`` from Redis (once) before this node serves it as its new home.

        Raises what Redis raised, or ``LoadRefused``: the room must not be
        served then (served from scratch, its next write would overwrite the
        journal of every seat it had); the next join or relayed open loads it again.
        """
        if room in self._rooms:
            return
        loading = self._loading.get(room)
        if loading is not None:
            await asyncio.shield(loading)
            if room not in self._rooms:
                raise LoadRefused(f"room {room}: its load failed")
            return
        loading = asyncio.get_running_loop().create_future()
        self._loading[room] = loading
        epoch = secrets.token_hex(8)
        record = _Room(epoch, touched=time.time())
        loaded = False
        from redis.exceptions import ResponseError  # the extra: only a cluster gets here

        try:
            try:
                result = await self._load(redis, room, epoch)
            except ResponseError as exc:  # Redis answered: no outage, but nothing to serve
                raise LoadRefused(f"room {room}: {exc}") from exc
            if not result:
                raise LoadRefused(f"room {room}: its lease is not this node's")
            try:
                self._restore(room, result, record, rooms)
            except (ValueError, TypeError, KeyError, IndexError):
                # not data this code wrote: served afresh (the members rejoin)
                logger.exception("room %s: its data in Redis cannot be read", room)
                record.reset = True
            loaded = True
        finally:
            if loaded:  # else the next ``ensure`` (a join, or a relayed open) loads it again
                self._rooms[room] = record
            del self._loading[room]
            loading.set_result(None)

    async def _load(self, redis: Redis, room: str, epoch: str) -> Any:
        return await redis.eval(
            LOAD,
            2,
            self._key("room", room),
            self._key("home", room),
            epoch,
            int(self.ttl * 1000),
            self._key("replay", room) + ":",
            self._node_id,
        )

    def _restore(self, room: str, result: Any, record: _Room, rooms: JournaledRooms) -> None:
        raw_fields, raw_streams = result
        fields = {
            _text(raw_fields[i]): _text(raw_fields[i + 1]) for i in range(0, len(raw_fields), 2)
        }
        streams: dict[str, list[tuple[int, str]]] = {}
        for i in range(0, len(raw_streams), 2):
            entries = []
            for entry_id, values in raw_streams[i + 1]:
                pairs = {_text(values[j]): values[j + 1] for j in range(0, len(values), 2)}
                entries.append((int(_text(entry_id).split("-", 1)[0]), _text(pairs["b"])))
            streams[_text(raw_streams[i])] = entries
        if "meta" not in fields:
            return  # a new room: nothing to take over
        seqs = rooms.restore(room, fields, streams, time.time())
        if seqs is None:
            record.reset = True  # held here already: write what we hold
            return
        session = rooms._sessions[room]
        media = _journaled_media(fields)
        record.seqs = dict(seqs)
        # As Redis holds them: a seat whose media ends below is rewritten.
        record.shapes = {
            m.id: (m.streams, m.stream_id, tuple(media.get(m.id, ())))
            for m in session.members.values()
        }
        record.sync = session.sync_state
        record.max_streaming = session.max_streaming
        if rooms.config.media_node:  # its media was on the old home's media node
            # (nobody is connected yet: what it tells them waits in their replay)
            rooms.media_moved(room, media)
        for name, raw in fields.items():  # the answers as Redis holds them (seated or not)
            if name.startswith("a:"):
                member_id = name[2:].split(":", 1)[0]
                record.answers.setdefault(member_id, set()).add(name)
                record.order = max(record.order, int(raw.split(":", 1)[0]))
        for member in session.members.values():
            answered = member.answered
            record.answer_marks[member.id] = (
                (len(answered), next(reversed(answered))) if answered else None
            )
        # members in the hash but not seated: delete them at the next write
        for name in fields:
            if name.startswith("m:") and name[2:] not in record.seqs:
                record.seqs[name[2:]] = 0
        self.dirty.add(room)
        self._wake()

    # --- writing ---------------------------------------------------------------------

    def collect(self, sessions: dict[str, Session]) -> list[Write]:
        """The ``JOURNAL`` calls for every room changed since the last collect."""
        dirty, self.dirty = self.dirty, set()
        writes = []
        for room in dirty:
            record = self._rooms.get(room)
            if record is not None:
                write = self._build(room, sessions.get(room), record)
                if write is not None:
                    writes.append(write)
        return writes

    def written(self, writes: list[Write], results: list[Any]) -> list[str]:
        """Take the scripts' answers; returns the rooms another home has taken over.

        A room whose write did not land is rewritten whole on a later beat
        (what reached Redis is unknown), if its epoch is still this home's.
        """
        lost = []
        for (room, _, _), result in zip(writes, results, strict=True):
            if result == 1:
                continue
            record = self._rooms.get(room)
            if record is None:
                continue
            if result == -2:
                logger.error("room %s was taken over by another home: giving it up", room)
                self.forget(room)
                lost.append(room)
                continue
            if isinstance(result, Exception):
                logger.error("writing room %s to Redis failed: %s", room, result)
            elif result == -1:
                logger.warning("room %s: its data is gone from Redis: rewriting it", room)
            record.reset = True
        return lost

    def failed(self, writes: list[Write]) -> None:
        """The pipeline failed: what reached Redis is unknown, so rewrite those rooms."""
        for room, _, _ in writes:
            record = self._rooms.get(room)
            if record is not None:
                record.reset = True

    def _build(self, room: str, session: Session | None, record: _Room) -> Write | None:
        prefix = self._key("replay", room) + ":"
        keys = [self._key("room", room), self._key("home", room)]
        reset = record.reset
        if session is None:
            if reset:
                return None  # nothing of ours in Redis
            keys += [prefix + member_id for member_id in record.seqs]
            record.forget_seats()
            record.sync, record.max_streaming, record.reset = _UNSET, None, True
            return room, keys, self._args(record, {"e": 1}, reset=False)
        if reset:
            record.forget_seats()
            record.sync, record.max_streaming, record.reset = _UNSET, None, False
        index: dict[str, int] = {}

        def key_index(member_id: str) -> int:
            at = index.get(member_id)
            if at is None:
                keys.append(prefix + member_id)
                at = index[member_id] = len(keys)  # Lua's KEYS are 1-based
            return at

        hset: list[str] = []
        if session.sync_state is not record.sync or session.max_streaming != record.max_streaming:
            hset += ["meta", _meta(session)]
            record.sync, record.max_streaming = session.sync_state, session.max_streaming
        groups: dict[str, list[list[Any]]] = {}
        trims: list[list[Any]] = []
        hdel: list[str] = []
        seqs, shapes = record.seqs, record.shapes
        for member in session.members.values():
            member_id = member.id
            written = seqs.get(member_id)
            shape = _shape(member)
            if written is None or shapes.get(member_id) != shape:
                hset += ["m:" + member_id, _record(member, shape[2])]
                shapes[member_id] = shape
            answered = member.answered
            mark = (len(answered), next(reversed(answered))) if answered else None
            if record.answer_marks.get(member_id, None) != mark:
                self._answers(record, member_id, answered or {}, hset, hdel)
                record.answer_marks[member_id] = mark
            if written is not None and member.seq == written:
                continue
            replay = member.replay
            first = replay.last - len(replay) + 1
            at = key_index(member_id)
            bases = replay.bases
            for seq in range(max((written or 0) + 1, first), member.seq + 1):
                groups.setdefault(bases[seq - first], []).append([at, str(seq)])
            if first > 1:
                trims.append([at, str(first)])
            hset += ["q:" + member_id, str(member.seq)]
            seqs[member_id] = member.seq
        gone: list[int] = []
        for member_id in [m for m in seqs if m not in session.members]:
            hdel += ["m:" + member_id, "q:" + member_id]
            hdel += record.answers.pop(member_id, ())
            record.answer_marks.pop(member_id, None)
            gone.append(key_index(member_id))
            del seqs[member_id]
            shapes.pop(member_id, None)
        if record.touch:
            record.touch = False
            for member_id in session.members:
                key_index(member_id)
        elif not (hset or hdel or groups or reset):
            return None
        ops: dict[str, Any] = {}
        if hset:
            ops["h"] = hset
        if hdel:
            ops["d"] = hdel
        if gone:
            ops["k"] = gone
        if groups:
            ops["x"] = [[base, targets] for base, targets in groups.items()]
        if trims:
            ops["m"] = trims
        return room, keys, self._args(record, ops, reset=reset)

    @staticmethod
    def _answers(
        record: _Room,
        member_id: str,
        answered: dict[int | str, str],
        hset: list[str],
        hdel: list[str],
    ) -> None:
        """The writes that make Redis hold ``member_id``'s response cache as it is here."""
        written = record.answers.setdefault(member_id, set())
        current = set()
        for request_id, frame in answered.items():
            name = f"a:{member_id}:{json.dumps(request_id)}"
            current.add(name)
            if name not in written:
                record.order += 1
                hset += [name, f"{record.order}:{frame}"]
                written.add(name)
        for name in written - current:
            hdel.append(name)
            written.discard(name)

    def _args(self, record: _Room, ops: dict[str, Any], *, reset: bool) -> list[Any]:
        return [
            self._node_id,
            record.epoch,
            int(self.ttl * 1000),
            json.dumps(ops, separators=(",", ":")),
            "1" if reset else "0",
        ]
