"""A room's media on its home's media node, and what a takeover does to it (docs/scaling.md).

Two ``roomsignal serve --redis --janus`` nodes (each with a private Janus of
its own) on a real redis-server; ``kill -9`` of the room's home kills its
Janus with it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cluster.conftest import (  # the cluster tests' real redis-server and node processes
    SECRET,
    Node,
    RedisServer,
    call,
    home_of,
    redis,  # noqa: F401 (a fixture)
    room_hash,
    session,
    sessions,  # noqa: F401 (a fixture)
    start_node,
)
from roomsignal import ErrorCode, ReconnectPolicy, Session
from roomsignal.media import Publisher, Subscriber, SubscriptionClosed, TestPatternTrack
from roomsignal.server._janus_process import JanusProcess
from roomsignal.testing import CutProxy
from roomsignal.tokens import mint

from .conftest import WAIT, H, Heard, W, janus_rooms

pytestmark = pytest.mark.timeout(90)

PATIENT = ReconnectPolicy(initial_delay=0.05, max_delay=0.3, jitter=False, max_attempts=200)


async def test_a_takeover_ends_the_media_and_it_flows_again_on_the_new_home(
    redis: RedisServer,  # noqa: F811
    sessions: list[Any],  # noqa: F811
) -> None:
    started: list[Node] = list(
        await asyncio.gather(*(start_node(redis, f"m{i}", "--janus") for i in (1, 2)))
    )
    try:
        by_id = {node.node_id: node for node in started}
        async with CutProxy(started[0].port) as proxy:
            host = session(sessions, proxy.url, "show", "host", reconnect=PATIENT)
            await host.connect()
            dead = by_id[await home_of(redis, "show")]
            (edge,) = [node for node in started if node is not dead]
            if proxy.target_port == dead.port:  # the host sat on the home: it redials the edge
                proxy.target_port = edge.port
            viewer = session(sessions, edge.url, "show", "viewer", reconnect=PATIENT)
            await viewer.connect()
            heard, seen = Heard(host), Heard(viewer)
            target = host.participant_id or ""
            async with Subscriber(viewer) as subscriber:
                publisher = Publisher(host, video=TestPatternTrack(W, H))
                await publisher.start()
                await publisher.wait_for_connected(1, timeout=WAIT)
                first = await subscriber.subscribe(target, timeout=WAIT)
                await first.wait_for_frames(5, timeout=WAIT)
                # The home dies, and its Janus with it: the room moves to the edge.
                upstream = publisher.upstream_exchange_id
                dead.kill()
                # Section 10's rule for a lost media node, to each party of an
                # exchange through it: 801 mediaNodeLost, then subscriptionEnded.
                for who, mine in ((heard, upstream), (seen, first.exchange_id)):
                    lost = await who.wait("session_error", lambda e: e.method is None, timeout=30)
                    assert lost.code == ErrorCode.TRANSPORT_REQUEST_ERROR_CODE
                    assert lost.data["reason"] == "mediaNodeLost"
                    ended = await who.wait("subscription_ended", timeout=30)
                    assert (ended.exchange_id, ended.participant_id) == (mine, target)
                    assert ended.reason == "mediaNodeLost"
                    assert who.events.index(("session_error", lost)) < who.events.index(
                        ("subscription_ended", ended)
                    )
                await seen.wait("stream_unpublished", timeout=30)
                assert await home_of(redis, "show") == edge.node_id
                assert host.participant_id == target  # resumed, not reset
                with pytest.raises(SubscriptionClosed) as closed:  # its peer connection went
                    await first.wait_for_frames(10**9, timeout=WAIT)
                assert closed.value.reason == "mediaNodeLost"
                await publisher.close()
                # Publishing again goes to the new home's media node, and the
                # Subscriber makes the ended subscription again by itself.
                async with Publisher(host, video=TestPatternTrack(W, H)) as again:
                    await again.wait_for_connected(1, timeout=WAIT)
                    second = await subscriber.wait_for_subscription(target, timeout=WAIT)
                    assert second.exchange_id != first.exchange_id
                    await second.wait_for_frames(5, timeout=WAIT)
                    # Each ended once: nothing more since the takeover's notice.
                    assert [e.exchange_id for e in heard.of("subscription_ended")] == [upstream]
                    assert [e.exchange_id for e in seen.of("subscription_ended")] == [
                        first.exchange_id
                    ]
    finally:
        await asyncio.gather(*(node.stop() for node in started))


async def test_a_home_that_lost_its_lease_hangs_up_the_rooms_media(
    redis: RedisServer,  # noqa: F811
    janus: JanusProcess,
) -> None:
    """A partition: the home lives on, but its lease went elsewhere; its Janus keeps nothing."""
    from redis.asyncio import Redis

    from roomsignal.server import SignalingServer
    from roomsignal.server._cluster import Cluster

    server = SignalingServer(secret=SECRET, media_node=janus.url)
    cluster = Cluster(server, redis.url, node_id="alive", lease=1.5)
    await cluster.start()
    client = Redis.from_url(redis.url)
    try:
        host = Session(server.url, token=mint(SECRET, "show"), name="host", reconnect=None)
        viewer = Session(server.url, token=mint(SECRET, "show"), name="viewer", reconnect=None)
        async with (
            host,
            viewer,
            Publisher(host, video=TestPatternTrack(W, H)) as publisher,
            Subscriber(viewer) as subscriber,
        ):
            await publisher.wait_for_connected(1, timeout=WAIT)
            subscription = await subscriber.subscribe(host.participant_id or "", timeout=WAIT)
            await subscription.wait_for_frames(3, timeout=WAIT)
            assert len(await janus_rooms(janus.url)) == 1
            dropped = asyncio.get_running_loop().create_future()
            host.on_disconnected(lambda event: dropped.done() or dropped.set_result(event))
            await client.set("roomsignal:home:show", "elsewhere")  # another node's now
            await asyncio.wait_for(dropped, WAIT)  # given up at the next beat
            assert server.media_node is not None
            async with asyncio.timeout(WAIT):
                await server.media_node.wait_idle()
            assert await janus_rooms(janus.url) == []
    finally:
        await client.aclose()
        await cluster.close()


async def test_what_the_media_node_makes_a_home_send_is_journaled_first(
    redis: RedisServer,  # noqa: F811
    janus: JanusProcess,
) -> None:
    """The commit gate holds for the media node's reports too (PROTOCOL.md sections 8, 10).

    The answer to an ``sdpOffer`` (given late, when Janus answered) and the
    ``sdpAnswer`` notification that follows reach a home's own client only
    once Redis holds them: the seat's journaled answer ``a:PID:ID`` and its
    ``seq``. Else a ``kill -9`` of the home right then leaves a client holding
    a ``seq`` the new home never had (a replay gap: a state reset), and an
    answer that a request sent again would not find.
    """
    import json

    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    from roomsignal.server import SignalingServer
    from roomsignal.server._cluster import Cluster

    from .test_errors import raw_offer

    server = SignalingServer(secret=SECRET, media_node=janus.url)
    cluster = Cluster(server, redis.url, node_id="home", lease=1.5)
    await cluster.start()
    pc, sdp = await raw_offer()
    try:
        async with connect(server.url, subprotocols=[Subprotocol("roomsignal.v1")]) as ws:
            joined = await call(ws, 1, "join", token=mint(SECRET, "show"), name="host")
            me = joined["result"]["participantId"]
            published = await call(ws, 2, "publish", audio=False, video=True)
            upstream = published["result"]["exchangeId"]
            await ws.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 3,
                        "method": "sdpOffer",
                        "params": {"exchangeId": upstream, "sdp": sdp},
                    }
                )
            )
            seen: set[str] = set()
            async with asyncio.timeout(WAIT):
                while seen != {"answer", "sdpAnswer"}:  # both, in whichever order
                    frame = json.loads(await ws.recv())
                    if frame.get("id") == 3:
                        assert frame["result"] == {}
                        journal = await room_hash(redis, "show")
                        assert f"a:{me}:3" in journal  # the answer, journaled before it came
                        seen.add("answer")
                    elif frame.get("method") == "sdpAnswer":
                        seq = frame["params"]["seq"]
                        journal = await room_hash(redis, "show")
                        assert int(journal[f"q:{me}"]) >= seq  # so was its seq
                        seen.add("sdpAnswer")
    finally:
        await pc.close()
        await cluster.close()


async def test_a_frozen_server_leaves_its_rooms_as_they_are_when_the_media_node_reports(
    janus: JanusProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drain freezes the rooms before it journals and hands them over (``Cluster.drain``).

    What the media node reports after that (here Janus's ``webrtcup`` of an
    upstream that connects meanwhile) must change nothing: else the node
    would number and write notifications (``streamPublished``) that the
    journal it handed over never holds, and the members would resume on the
    new home past it (a replay gap, a state reset).
    """
    import json

    from aiortc import RTCSessionDescription
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    from roomsignal.server import SignalingServer

    from .test_errors import raw_offer

    reported = asyncio.Event()
    pc, sdp = await raw_offer()
    async with SignalingServer(secret=SECRET, media_node=janus.url) as server:
        media_up = server.media_up

        def spy(key: str) -> None:  # the server's own handler, then a mark for the test
            media_up(key)
            reported.set()

        monkeypatch.setattr(server, "media_up", spy)
        viewer = Session(server.url, token=mint(SECRET, "show"), name="viewer", reconnect=None)
        try:
            async with connect(server.url, subprotocols=[Subprotocol("roomsignal.v1")]) as ws:
                await call(ws, 1, "join", token=mint(SECRET, "show"), name="host")
                await viewer.connect()
                published = await call(ws, 2, "publish", audio=False, video=True)
                upstream = published["result"]["exchangeId"]
                await call(ws, 3, "sdpOffer", exchangeId=upstream, sdp=sdp)
                async with asyncio.timeout(WAIT):
                    while (frame := json.loads(await ws.recv())).get("method") != "sdpAnswer":
                        pass
                before = server.rooms.last_seq(viewer.participant_id or "")
                await server.freeze()
                answer = frame["params"]["sdp"]
                await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
                await asyncio.wait_for(reported.wait(), WAIT)  # Janus: the upstream is up
                assert server.rooms.last_seq(viewer.participant_id or "") == before
                state = server.rooms.session_state("show")
                assert state is not None
                assert all(p.streams is None for p in state.participants)
        finally:
            await viewer.close()
            await pc.close()
