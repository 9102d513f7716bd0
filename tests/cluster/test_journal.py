"""The journal alone, on a real redis-server: two homes of one room, in one process.

Home ``a`` serves a room and writes it with the real ``JOURNAL`` script;
home ``b`` takes it over with the real ``LOAD`` script. The lease is a real
key set here, as the placing script would set it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from roomsignal.protocol import decode
from roomsignal.server import ServerConfig
from roomsignal.server._journal import JOURNAL, Journal, JournaledRooms
from roomsignal.server._rooms import Effect, Send
from roomsignal.tokens import mint

from .conftest import RedisServer

pytestmark = pytest.mark.timeout(30)
_IDS = itertools.count(1)

SECRET = "journal-unit-secret-0123456789abcdef"
NOW = 1_800_000_000.0


def key(kind: str, name: str = "") -> str:
    return f"roomsignal:{kind}:{name}" if name else f"roomsignal:{kind}"


@pytest.fixture
async def client(redis: RedisServer) -> AsyncIterator[Redis]:
    made = Redis.from_url(redis.url)
    try:
        yield made
    finally:
        await made.aclose()


class Home:
    """One node's rooms and journal; ``flush`` runs its writes as the cluster's writer does."""

    def __init__(self, client: Redis, node_id: str, **config: Any) -> None:
        self.client = client
        self.node_id = node_id
        self.journal = Journal(key, node_id, ttl=20.0, wake=lambda: None)
        self.rooms = JournaledRooms(SECRET, ServerConfig(**config), self.journal.mark)
        self.lost: list[str] = []

    async def take(self, room: str) -> None:
        await self.client.set(key("home", room), self.node_id)
        await self.journal.ensure(self.client, room, self.rooms)

    async def flush(self) -> list[Any]:
        writes = self.journal.collect(self.rooms._sessions)
        results = [await self.client.eval(JOURNAL, len(k), *k, *a) for _, k, a in writes]
        self.lost = self.journal.written(writes, results)
        return results

    def request(self, conn: int, method: str, **params: Any) -> list[Effect]:
        # Ids unique across homes: a seat's ids must not repeat (protocol.md section 8).
        frame = {"jsonrpc": "2.0", "id": next(_IDS), "method": method, "params": params}
        return self.rooms.handle(conn, decode(json.dumps(frame)), NOW)  # type: ignore[arg-type]

    def join(self, conn: int, name: str, room: str = "r", **params: Any) -> dict[str, Any]:
        roles = params.pop("roles", [])
        effects = self.request(
            conn, "join", token=mint(SECRET, room, now=NOW, roles=roles), name=name, **params
        )
        answer = sent(effects, conn)[0]
        return dict(answer.get("result") or answer["error"])


def sent(effects: list[Effect], conn: int) -> list[dict[str, Any]]:
    return [json.loads(e.frame) for e in effects if isinstance(e, Send) and e.conn == conn]


async def test_a_new_home_resumes_exactly_what_the_old_one_would(client: Redis) -> None:
    a, b = Home(client, "a"), Home(client, "b")
    await a.take("r")
    p1 = a.join(1, "p1", roles=["synchronizer"])
    p2 = a.join(2, "p2")
    a.request(2, "publish", audio=True, video=False)
    a.request(1, "sendSyncData", position=3.5, playing=True)
    for i in range(3):
        a.request(1, "sendMessage", text=f"m{i}")
    assert await a.flush() == [1]
    seen = a.rooms.last_seq(p2["participantId"])
    a.rooms.disconnect(2, NOW)  # p2 away: what follows goes to its replay buffer only
    for i in range(3, 6):
        a.request(1, "sendMessage", text=f"m{i}")
    assert await a.flush() == [1]
    expected = a.rooms._members[p2["participantId"]].replay.tail(3)

    await b.take("r")  # a is dead: b holds the lease now
    for pid in (p1["participantId"], p2["participantId"]):
        assert b.rooms.last_seq(pid) == a.rooms.last_seq(pid)
    state = b.rooms.session_state("r")
    assert state is not None and state.sync_state is not None
    assert state.sync_state.position == 3.5
    streams = {p.name: p.streams for p in state.participants}
    assert streams["p2"] is not None and streams["p2"].audio and streams["p1"] is None
    token = mint(SECRET, "r", now=NOW)
    effects = b.request(
        9,
        "join",
        token=token,
        name="p2",
        oldParticipantSecret=p2["participantSecret"],
        lastSeq=seen,
    )
    answer, *replayed = sent(effects, 9)
    assert answer["result"]["resumed"] is True
    assert answer["result"]["participantId"] == p2["participantId"]
    assert [e.frame for e in effects if isinstance(e, Send) and e.conn == 9][1:] == expected
    assert [f["params"]["text"] for f in replayed] == ["m3", "m4", "m5"]

    # the old home is fenced off: not its lease, and (lease or not) not its epoch
    a.request(1, "sendMessage", text="stale")
    assert await a.flush() == [0]
    await client.set(key("home", "r"), "a")
    a.journal.tick(NOW)  # a retries its write as a whole: b's epoch is there
    assert await a.flush() == [-2]
    assert a.lost == ["r"] and not a.journal.holds("r")
    await client.set(key("home", "r"), "b")

    # a resume ahead of what b holds (those frames never reached Redis): a replay gap
    ahead = b.request(
        8,
        "join",
        token=token,
        name="p1",
        oldParticipantSecret=p1["participantSecret"],
        lastSeq=(b.rooms.last_seq(p1["participantId"]) or 0) + 1,
    )
    error = sent(ahead, 8)[0]["error"]
    assert error["data"]["reason"] == "replayGap"
    assert error["message"].startswith("lastSeq is past what this room's new home holds")
    assert b.rooms.is_connected(p1["participantId"]) is None  # the seat is gone: rejoin afresh
    assert await b.flush() == [1]
    seats = await client.hgetall(key("room", "r"))
    assert f"m:{p1['participantId']}".encode() not in seats
    assert not await client.exists(key("replay", "r") + ":" + p1["participantId"])

    # the room ends: every key goes
    b.request(9, "leave")
    assert await b.flush() == [1]
    assert not await client.keys("roomsignal:r*")


async def test_streams_keep_the_homes_bound_and_a_lost_hash_is_rewritten(client: Redis) -> None:
    a = Home(client, "a", replay_buffer=3)
    await a.take("r")
    a.join(1, "p1")
    p2 = a.join(2, "p2")
    a.rooms.disconnect(2, NOW)
    for i in range(10):
        a.request(1, "sendMessage", text=f"m{i}")
    assert await a.flush() == [1]
    stream = key("replay", "r") + ":" + p2["participantId"]
    assert [entry_id for entry_id, _ in await client.xrange(stream)] == [b"8-0", b"9-0", b"10-0"]
    ttl = await client.pttl(stream)
    assert 0 < ttl <= 20_000

    # Redis loses the room (a restart): the next write is refused, and a's
    # next beat rewrites it all under a new epoch
    await client.delete(key("room", "r"), stream)
    a.request(1, "sendMessage", text="m10")
    assert await a.flush() == [-1]
    a.journal.tick(NOW)
    assert await a.flush() == [1]

    b = Home(client, "b", replay_buffer=3)
    await b.take("r")
    assert b.rooms.last_seq(p2["participantId"]) == 11
    effects = b.request(
        9,
        "join",
        token=mint(SECRET, "r", now=NOW),
        name="p2",
        oldParticipantSecret=p2["participantSecret"],
        lastSeq=1,  # older than the 3 held: the documented fallback
    )
    assert sent(effects, 9)[0]["error"]["data"]["reason"] == "replayGap"


async def test_unreadable_data_in_redis_seats_nobody(client: Redis, caplog: Any) -> None:
    """A hash this code did not write is logged, and the room is served afresh."""
    await client.hset(key("room", "bad"), mapping={"meta": '{"ms": 4}', "m:p_1": "not json"})
    b = Home(client, "b")
    await b.take("bad")
    assert b.rooms.session_state("bad") is None and b.journal.holds("bad")
    assert "cannot be read" in caplog.text
    assert "participantId" in b.join(1, "fresh", room="bad")
    assert await b.flush() == [1]  # rewritten whole under b's epoch
    seats = await client.hgetall(key("room", "bad"))
    assert b"m:p_1" not in seats and len([f for f in seats if f.startswith(b"m:")]) == 1


async def test_a_load_refused_serves_nothing_and_keeps_the_journal(client: Redis) -> None:
    """A takeover whose load fails seats nobody and writes nothing; a later load resumes.

    Once, a room whose load failed was served from scratch and its fresh
    state written over the journal of every seat it had.
    """
    from roomsignal.server._journal import LoadRefused

    a, b = Home(client, "a"), Home(client, "b")
    await a.take("r")
    p1 = a.join(1, "p1")
    a.request(1, "sendMessage", text="kept")
    assert await a.flush() == [1]
    before = await client.hgetall(key("room", "r"))

    with pytest.raises(LoadRefused):  # the lease is still a's: not b's to load
        await b.journal.ensure(client, "r", b.rooms)
    assert not b.journal.holds("r") and b.rooms.session_state("r") is None
    assert await b.flush() == []
    assert await client.hgetall(key("room", "r")) == {**before}

    await b.take("r")  # now it is b's: the seat is there, with its seq
    assert b.rooms.last_seq(p1["participantId"]) == a.rooms.last_seq(p1["participantId"])
