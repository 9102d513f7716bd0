"""Three real nodes on a real Redis: the protocol is the same whatever node a client reaches.

These tests kill nothing: they share three nodes (each test its own rooms).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from roomsignal import ErrorCode, SessionErrorException
from roomsignal.testing import CutProxy

from .conftest import (
    Node,
    Recorder,
    RedisServer,
    call,
    home_of,
    room_hash,
    room_keys,
    session,
    token,
    wait_until,
)

pytestmark = [pytest.mark.timeout(60), pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture
def nodes(shared_nodes: list[Node]) -> list[Node]:
    return shared_nodes


@pytest.fixture
def redis(shared_redis: RedisServer) -> RedisServer:
    return shared_redis


@pytest.fixture
def sessions(module_sessions: list[Any]) -> list[Any]:
    return module_sessions


async def test_errors_with_the_parties_on_different_nodes(
    nodes: list[Node], redis: RedisServer, sessions: list[Any]
) -> None:
    """104, 206, 303, 103 decided by the home for a party relayed from another node."""
    n1, n2, n3 = nodes
    alice = session(sessions, n1.url, "table", "alice", claims={"max_streaming": 1})
    await alice.connect()
    # 104: the name is taken on another node
    twin = session(sessions, n2.url, "table", "alice", reconnect=None)
    with pytest.raises(SessionErrorException) as info:
        await twin.connect()
    assert info.value.error.code == ErrorCode.EXISTING_USER_IN_SESSION_ERROR_CODE
    # 206: the streaming limit (1) counts alice, held on n1
    bob = session(sessions, n3.url, "table", "bob", reconnect=None)
    with pytest.raises(SessionErrorException) as info:
        await bob.connect()
    assert info.value.error.code == ErrorCode.SESSION_IS_FULL_ERROR_CODE
    viewer = session(sessions, n2.url, "table", "viewer", participant_type="viewer")
    await viewer.connect()
    await alice.publish(audio=True, video=False)
    # 303: a second subscribe while the first exchange is in progress
    await viewer.subscribe(alice.participant_id)
    with pytest.raises(SessionErrorException) as info:
        await viewer.subscribe(alice.participant_id)
    assert info.value.error.code == ErrorCode.MEDIA_ENDPOINT_ERROR_CODE
    # 103: the publisher (another node) leaves during the exchange
    errors = Recorder()
    viewer.on_session_error(errors)
    await alice.close()
    (error,) = await errors.wait_for(1)
    assert error.code == ErrorCode.USER_CLOSED_ERROR_CODE
    assert await home_of(redis, "table") in {"n1", "n2", "n3"}


async def test_fan_out_across_nodes_in_order(nodes: list[Node], sessions: list[Any]) -> None:
    """Chat and sync data from one node reach members on all three, in one order."""
    sender = session(sessions, nodes[0].url, "fan", "p0", claims={"roles": ["synchronizer"]})
    members = [sender] + [
        session(sessions, node.url, "fan", f"p{i}") for i, node in enumerate(nodes * 2) if i
    ]
    for member in members:
        await member.connect()
    inboxes = []
    for member in members[1:]:
        inbox = Recorder()
        # two listeners: their own order is per listener, so compare by seq
        member.on_message(lambda m, inbox=inbox: inbox((m.seq, m.text)))
        member.on_sync_data(lambda d, inbox=inbox: inbox((d.seq, d.position)))
        inboxes.append(inbox)
    expected: list[Any] = []
    for i in range(30):
        await sender.send_message(f"m{i}")
        await sender.send_sync_data(position=float(i), playing=True)
        expected += [f"m{i}", float(i)]
    for inbox in inboxes:
        await inbox.wait_for(len(expected))
        ordered = sorted(inbox.items)
        assert [item for _, item in ordered] == expected
        seqs = [seq for seq, _ in ordered]
        assert seqs == list(range(seqs[0], seqs[0] + len(expected)))  # none lost in between


async def test_resume_on_another_node_loses_nothing(nodes: list[Node], sessions: list[Any]) -> None:
    """A cut connection redials through the proxy to another node and resumes by seq."""
    n1, n2, n3 = nodes
    async with CutProxy(n2.port) as proxy:
        listener = session(sessions, proxy.url, "resume", "listener")
        talker = session(sessions, n3.url, "resume", "talker")
        inbox, reconnected = Recorder(), Recorder()
        listener.on_message(lambda m: inbox(m.text))
        listener.on_reconnected(reconnected)
        await listener.connect()
        await talker.connect()
        for i in range(20):
            await talker.send_message(f"m{i}")
        await inbox.wait_for(20)
        proxy.target_port = n1.port  # the next connection lands on another node
        proxy.cut()
        for i in range(20, 40):
            await talker.send_message(f"m{i}")
        (event,) = await reconnected.wait_for(1)
        assert event.resumed and not event.state_reset
        await inbox.wait_for(40)
        assert inbox.items == [f"m{i}" for i in range(40)]


async def test_takeover_across_nodes_closes_the_old_connection_with_4001(nodes: list[Node]) -> None:
    n1, n2, n3 = nodes
    async with (
        connect(n1.url, subprotocols=["roomsignal.v1"]) as old,  # type: ignore[list-item]
        connect(n2.url, subprotocols=["roomsignal.v1"]) as new,  # type: ignore[list-item]
        connect(n3.url, subprotocols=["roomsignal.v1"]) as other,  # type: ignore[list-item]
    ):
        joined = (await call(old, 1, "join", token=token("take"), name="bob"))["result"]
        await call(other, 1, "join", token=token("take"), name="alice")
        await call(other, 2, "sendMessage", text="hi")
        resumed = await call(
            new,
            1,
            "join",
            token=token("take"),
            name="bob",
            oldParticipantSecret=joined["participantSecret"],
            lastSeq=0,
        )
        assert resumed["result"]["resumed"] is True
        assert resumed["result"]["participantId"] == joined["participantId"]
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await old.recv()
        assert old.close_code == 4001
        # the replayed message reached the new connection, on another node
        async with asyncio.timeout(10):
            while True:
                frame = json.loads(await new.recv())
                if frame.get("method") == "messageReceived":
                    assert frame["params"]["text"] == "hi"
                    break


async def test_a_second_join_on_a_relayed_connection_is_101_and_keeps_the_seat(
    nodes: list[Node], redis: RedisServer
) -> None:
    async with connect(nodes[0].url, subprotocols=["roomsignal.v1"]) as host:  # type: ignore[list-item]
        # the host's join places the room (by load, on any node); the guest
        # joins through a node that is not its home, so its frames are relayed
        assert "result" in await call(host, 1, "join", token=token("twice"), name="host")
        home = await home_of(redis, "twice")
        edge = next(node for node in nodes if node.node_id != home)
        async with connect(edge.url, subprotocols=["roomsignal.v1"]) as guest:  # type: ignore[list-item]
            await _second_join_keeps_the_seat(host, guest)


async def _second_join_keeps_the_seat(host: Any, guest: Any) -> None:
    first = await call(guest, 1, "join", token=token("twice"), name="guest")
    assert "result" in first
    # a second join on the same connection, for another room: as on a lone
    # server, 101 from the room's home, and the guest keeps its seat
    again = await call(guest, 2, "join", token=token("elsewhere"), name="guest")
    assert again["error"]["code"] == ErrorCode.USER_GENERIC_ERROR_CODE
    state = await call(host, 2, "getSessionState")
    names = {p["name"] for p in state["result"]["participants"]}
    assert names == {"host", "guest"}
    await call(guest, 3, "sendMessage", text="still here")
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await host.recv())
            if frame.get("method") == "messageReceived":
                assert frame["params"]["text"] == "still here"
                break


async def test_a_malformed_relay_message_is_logged_and_ignored(
    nodes: list[Node], redis: RedisServer
) -> None:
    from redis.asyncio import Redis

    n1, n2, _ = nodes
    client = Redis.from_url(redis.url)
    try:
        for junk in (b"not json", b"[1,2]", b'{"k":"f","n":"zz","c":"x"}', b'{"k":"w"}'):
            for node in nodes:
                await client.publish(f"roomsignal:to:{node.node_id}", junk)
    finally:
        await client.aclose()
    async with (
        connect(n1.url, subprotocols=["roomsignal.v1"]) as a,  # type: ignore[list-item]
        connect(n2.url, subprotocols=["roomsignal.v1"]) as b,  # type: ignore[list-item]
    ):
        assert "result" in await call(a, 1, "join", token=token("junk"), name="a")
        assert "result" in await call(b, 1, "join", token=token("junk"), name="b")
        assert "result" in await call(b, 2, "ping")
    for node in nodes:
        assert await node.health() == 200


async def test_the_redis_keys_of_an_ended_room_are_gone(
    nodes: list[Node], redis: RedisServer, sessions: list[Any]
) -> None:
    """A live room's seats and replay streams are in Redis with a TTL; when it ends they are deleted."""
    a = session(sessions, nodes[0].url, "ending", "a")
    b = session(sessions, nodes[1].url, "ending", "b")
    await a.connect()
    await b.connect()
    inbox = Recorder()
    b.on_message(lambda m: inbox(m.text))
    await a.send_message("hi")
    await inbox.wait_for(1)
    stream_a = f"roomsignal:replay:ending:{a.participant_id}"  # b's join notified a
    stream_b = f"roomsignal:replay:ending:{b.participant_id}"

    async def stored() -> bool:
        keys = await room_keys(redis, "ending")
        return {"roomsignal:room:ending", stream_a, stream_b} <= set(keys)

    await wait_until(stored)
    seats = await room_hash(redis, "ending")
    assert {f"m:{a.participant_id}", f"m:{b.participant_id}", "epoch", "meta"} <= set(seats)
    # every key expires unless renewed: resume_window (30 s) + lease (1.5 s)
    assert all(0 < ttl <= 31_500 for ttl in (await room_keys(redis, "ending")).values())
    await a.close()
    await b.close()

    async def gone() -> bool:
        return not await room_keys(redis, "ending")

    await wait_until(gone)
