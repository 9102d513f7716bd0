"""Nothing is acknowledged before it is journaled (docs/scaling.md, "Takeover").

A client connected to a room's home used to get its ``sendMessage`` result
at once, while the journal write waited for the cluster writer's next
pipeline: a ``kill -9`` of the home between the two lost a message its
sender held a result for. Here the home is killed the instant the result
arrives, again and again; the message must reach the listener after the
takeover every time, as a resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from roomsignal import ReconnectPolicy
from roomsignal.testing import CutProxy

from .conftest import Node, Recorder, RedisServer, call, home_of, session, start_node, token

pytestmark = pytest.mark.timeout(120)

PATIENT = ReconnectPolicy(initial_delay=0.05, max_delay=0.3, jitter=False, max_attempts=200)
KILLS = 4


async def test_a_result_is_never_sent_before_its_journal_write(
    redis: RedisServer, sessions: list[Any]
) -> None:
    """``kill -9`` of the home the instant a ``sendMessage`` result arrives: the message survives."""
    nodes: list[Node] = list(await asyncio.gather(*(start_node(redis, f"a{i}") for i in (1, 2, 3))))
    spawned = 3
    try:
        for attempt in range(KILLS):
            room = f"acked{attempt}"
            # The first join places the room; then both parties sit on its home
            # itself (the listener through a proxy that will redial elsewhere).
            async with connect(nodes[0].url, subprotocols=["roomsignal.v1"]) as placer:  # type: ignore[list-item]
                await call(placer, 1, "join", token=token(room), name="placer")
                home = await home_of(redis, room)
                dead = next(node for node in nodes if node.node_id == home)
                alive = next(node for node in nodes if node is not dead)
                async with CutProxy(dead.port) as proxy:
                    listener = session(sessions, proxy.url, room, "listener", reconnect=PATIENT)
                    inbox = Recorder()
                    listener.on_message(lambda m, inbox=inbox: inbox(m.text))
                    back = Recorder()
                    listener.on_reconnected(back)
                    await listener.connect()
                    proxy.target_port = alive.port  # its next dial goes to a live node
                    sender = await connect(dead.url, subprotocols=["roomsignal.v1"])  # type: ignore[list-item]
                    try:
                        joined = await call(sender, 1, "join", token=token(room), name="sender")
                        assert "result" in joined, joined
                        request = {
                            "jsonrpc": "2.0",
                            "id": 2,
                            "method": "sendMessage",
                            "params": {"text": f"kept{attempt}"},
                        }
                        await sender.send(json.dumps(request))
                        async with asyncio.timeout(10):
                            while True:
                                frame = json.loads(await sender.recv())
                                if frame.get("id") == 2:
                                    dead.kill()  # the instant the result arrives
                                    break
                        assert "result" in frame, frame
                    finally:
                        with contextlib.suppress(Exception):
                            await sender.close()
                    (event,) = await back.wait_for(1, timeout=30)
                    assert event.resumed and not event.state_reset, event
                    assert await inbox.wait_for(1, timeout=20) == [f"kept{attempt}"]
                    sessions.remove(listener)
                    await listener.close()
            await dead.process.wait()
            spawned += 1
            nodes[nodes.index(dead)] = await start_node(redis, f"a{spawned}")
    finally:
        await asyncio.gather(*(node.stop() for node in nodes))


async def test_a_close_waits_behind_the_frames_held_for_the_journal(redis: RedisServer) -> None:
    """``leave`` on the home: its answer is held for the journal, and the 1000 close behind it."""
    from websockets.exceptions import ConnectionClosedOK

    from roomsignal.server import Cluster, SignalingServer
    from roomsignal.server._commit import HeldLink

    from .conftest import SECRET

    server = SignalingServer(secret=SECRET, port=0)
    cluster = Cluster(server, redis.url, node_id="h1", lease=1.5)
    await cluster.start()
    try:
        for attempt in range(5):
            async with connect(server.url, subprotocols=["roomsignal.v1"]) as ws:  # type: ignore[list-item]
                room = f"closing{attempt}"
                assert "result" in await call(ws, 1, "join", token=token(room), name="a")
                assert all(isinstance(link, HeldLink) for link in server._links.values())
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "leave"}))
                frames = []
                with pytest.raises(ConnectionClosedOK):
                    async with asyncio.timeout(10):
                        while True:
                            frames.append(json.loads(await ws.recv()))
                assert [f.get("id") for f in frames] == [2] and "result" in frames[0]
                assert ws.close_code == 1000
    finally:
        await cluster.close()


async def test_frames_written_while_a_journal_write_is_in_flight_wait_for_the_next(
    redis: RedisServer,
) -> None:
    """The writer took a link's held frames for a pipeline; more come before it returns.

    Those later frames acknowledge a change that pipeline does not carry (it
    was collected before them): they must wait for the next one, not go out
    with the first. Redis is held (``CLIENT PAUSE ... WRITE``) while the
    first pipeline is in flight, so that the second message is handled then.
    """
    from redis.asyncio import Redis

    from roomsignal.server import Cluster, SignalingServer

    from .conftest import SECRET

    server = SignalingServer(secret=SECRET, port=0)
    cluster = Cluster(server, redis.url, node_id="h1", lease=3.0)
    await cluster.start()
    client = Redis.from_url(redis.url)
    try:
        async with (
            connect(server.url, subprotocols=["roomsignal.v1"]) as listener,  # type: ignore[list-item]
            connect(server.url, subprotocols=["roomsignal.v1"]) as sender,  # type: ignore[list-item]
        ):
            joined = await call(listener, 1, "join", token=token("held"), name="listener")
            me = joined["result"]["participantId"]
            assert "result" in await call(sender, 1, "join", token=token("held"), name="sender")
            await client.ping()
            gate = cluster._gate
            assert gate is not None
            for attempt in range(3):
                await client.execute_command("CLIENT", "PAUSE", 5000, "WRITE")
                try:
                    first = {"text": f"first{attempt}"}
                    await sender.send(
                        json.dumps(
                            {
                                "jsonrpc": "2.0",
                                "id": 10 + 2 * attempt,
                                "method": "sendMessage",
                                "params": first,
                            }
                        )
                    )
                    async with asyncio.timeout(10):  # its journal write is held in Redis
                        while not gate.inflight:  # noqa: ASYNC110
                            await asyncio.sleep(0.001)
                    seq = server.rooms.last_seq(me)
                    second = {"text": f"second{attempt}"}
                    await sender.send(
                        json.dumps(
                            {
                                "jsonrpc": "2.0",
                                "id": 11 + 2 * attempt,
                                "method": "sendMessage",
                                "params": second,
                            }
                        )
                    )
                    async with asyncio.timeout(10):  # handled meanwhile
                        while server.rooms.last_seq(me) == seq:  # noqa: ASYNC110
                            await asyncio.sleep(0.001)
                finally:
                    await client.execute_command("CLIENT", "UNPAUSE")
                async with asyncio.timeout(10):
                    while True:
                        frame = json.loads(await listener.recv())
                        params = frame.get("params", {})
                        if params.get("text") == f"second{attempt}":
                            break
                # The instant it arrives, Redis holds it.
                journaled = await client.hget("roomsignal:room:held", f"q:{me}")
                assert journaled is not None and int(journaled) >= params["seq"], (
                    attempt,
                    journaled,
                    params["seq"],
                )
    finally:
        await client.aclose()
        await cluster.close()
