"""The cluster's former open points (docs/scaling.md): pacing across nodes, failed loads, giving up."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from .conftest import Node, RedisServer, call, home_of, start_node, token

pytestmark = pytest.mark.timeout(60)

PROTOCOL: Any = ["roomsignal.v1"]


@contextlib.asynccontextmanager
async def _members(url: str, room: str, names: list[str]) -> AsyncIterator[list[ClientConnection]]:
    async with contextlib.AsyncExitStack() as stack:
        joined = []
        for name in names:
            ws = await stack.enter_async_context(connect(url, subprotocols=PROTOCOL))
            assert "result" in await call(ws, 1, "join", token=token(room), name=name)
            joined.append(ws)
        yield joined


async def test_the_edge_paces_a_relayed_sender_by_what_the_home_wrote(redis: RedisServer) -> None:
    """``max_fanout_per_second`` holds for a client whose room is homed on another node.

    Each ``sendMessage`` into a room of 10 makes its home write 10 frames; at
    200 frames a second (a bucket of 32), 24 of them cannot take less than
    (24 x 11 - 32 - 2 x 11) / 200 = 1.05 s, however fast the machine (a lower
    bound, not a speed target). Unpaced, they took a few milliseconds each.
    """
    rate = ("--max-fanout-per-second", "200")
    started: list[Node] = list(
        await asyncio.gather(*(start_node(redis, f"p{i}", *rate) for i in (1, 2)))
    )
    try:
        names = [f"l{i}" for i in range(9)]
        async with _members(started[0].url, "paced", names) as listeners:
            home = await home_of(redis, "paced")
            edge = next(node for node in started if node.node_id != home)
            async with connect(edge.url, subprotocols=PROTOCOL) as sender:
                assert "result" in await call(sender, 1, "join", token=token("paced"), name="s")
                loop = asyncio.get_running_loop()
                began = loop.time()
                for i in range(24):
                    answer = await call(sender, 2 + i, "sendMessage", text=f"m{i}")
                    assert "result" in answer, answer
                took = loop.time() - began
            assert took >= 1.0, f"24 relayed sendMessage in {took:.2f}s: not paced"
            for ws in listeners:  # each still got every message
                texts = []
                async with asyncio.timeout(10):
                    while len(texts) < 24:
                        frame = json.loads(await ws.recv())
                        if frame.get("method") == "messageReceived":
                            texts.append(frame["params"]["text"])
                assert texts == [f"m{i}" for i in range(24)]
    finally:
        await asyncio.gather(*(node.stop() for node in started))


async def test_a_room_whose_load_fails_is_not_served_from_scratch(redis: RedisServer) -> None:
    """Its journal cannot be read by ``LOAD`` (Redis answers an error): 1013, nothing written.

    Both ways in: a join on the node that takes the room, and one relayed to it.
    Once, a relayed join seated the client in an empty room, whose writes
    would overwrite the room's journal.
    """
    from redis.asyncio import Redis
    from websockets.exceptions import ConnectionClosed

    client = Redis.from_url(redis.url)
    started: list[Node] = list(await asyncio.gather(*(start_node(redis, f"f{i}") for i in (1, 2))))
    try:
        await client.set("roomsignal:room:broken", "not a journal")  # LOAD's HGETALL fails
        for node in started:
            async with connect(node.url, subprotocols=PROTOCOL) as ws:
                await ws.send(
                    json.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": 1,
                            "method": "join",
                            "params": {"token": token("broken"), "name": f"on-{node.node_id}"},
                        }
                    )
                )
                with pytest.raises(ConnectionClosed):
                    async with asyncio.timeout(10):
                        while True:
                            frame = json.loads(await ws.recv())
                            assert frame.get("id") != 1, f"served from scratch: {frame}"
                assert ws.close_code == 1013, (ws.close_code, ws.close_reason)
        assert await client.get("roomsignal:room:broken") == b"not a journal"
        await home_of(redis, "broken")  # placed: one node was asked to load it, one relayed
    finally:
        await client.aclose()
        await asyncio.gather(*(node.stop() for node in started))


async def test_a_room_given_up_leaves_no_stale_session(redis: RedisServer) -> None:
    """A home that finds its lease held by another node forgets the room, not only its sockets."""
    from redis.asyncio import Redis
    from websockets.exceptions import ConnectionClosed

    from roomsignal.server import Cluster, SignalingServer

    from .conftest import SECRET, wait_until

    server = SignalingServer(secret=SECRET, port=0)
    cluster = Cluster(server, redis.url, node_id="g1", lease=1.5)
    await cluster.start()
    client = Redis.from_url(redis.url)
    try:
        async with connect(server.url, subprotocols=PROTOCOL) as ws:
            assert "result" in await call(ws, 1, "join", token=token("given"), name="a")
            assert server.rooms.session_state("given") is not None
            await client.set("roomsignal:home:given", "elsewhere", px=60_000)

            async def forgotten() -> bool:
                return server.rooms.session_state("given") is None

            await wait_until(forgotten)
            assert server.rooms.stats()["participants"] == 0
            with pytest.raises(ConnectionClosed):  # dropped: it rejoins the real home
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
    finally:
        await client.aclose()
        await cluster.close()
