"""Losing the media node (kill -9 of Janus) and getting it back; a resume keeps media; leaks."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from media.conftest import open_peer_connections, udp_sockets
from roomsignal import ErrorCode, MediaError, ReconnectPolicy, Session
from roomsignal.media import Publisher, Subscriber, TestPatternTrack
from roomsignal.server import SignalingServer
from roomsignal.server._janus_process import JanusProcess

from .conftest import (
    SECRET,
    WAIT,
    H,
    Heard,
    ServerFactory,
    SessionFactory,
    W,
    healthz,
    janus_rooms,
    token,
)


async def test_kill_9_ends_every_exchange_and_media_flows_again_after_a_restart(
    janus: JanusProcess, server: SignalingServer, join: SessionFactory
) -> None:
    studio, alice, bob = await join("studio"), await join("alice"), await join("bob")
    heard = {s.participant_id: Heard(s) for s in (studio, alice, bob)}
    target = studio.participant_id or ""
    async with (
        Publisher(studio, video=TestPatternTrack(W, H)) as publisher,
        Subscriber(alice) as sub_a,
        Subscriber(bob) as sub_b,
    ):
        await publisher.wait_for_connected(1, timeout=WAIT)
        subscriptions = [await s.subscribe(target, timeout=WAIT) for s in (sub_a, sub_b)]
        upstream = publisher.upstream_exchange_id
        janus.kill()
        await janus.wait_stopped()
        for session, mine in (
            (studio, [upstream]),
            (alice, [subscriptions[0].exchange_id]),
            (bob, [subscriptions[1].exchange_id]),
        ):
            seen = heard[session.participant_id]
            ended = await seen.wait("subscription_ended")
            assert [e.exchange_id for e in seen.of("subscription_ended")] == mine
            assert ended.reason == "mediaNodeLost"
            lost = [e for e in seen.of("session_error") if e.method is None]
            assert [(e.code, e.data["reason"]) for e in lost] == [(801, "mediaNodeLost")]
        # The publisher counts as not publishing; signaling goes on.
        for seen in (heard[alice.participant_id], heard[bob.participant_id]):
            await seen.wait("stream_unpublished")
        assert (await healthz(server)) == (503, "media node unreachable\n")
        await alice.send_message("still here")
        assert (await bob.get_state()).participants
        with pytest.raises(MediaError) as raised:
            await studio.publish(video=True, audio=False)
        assert raised.value.code == ErrorCode.TRANSPORT_REQUEST_ERROR_CODE
        await publisher.wait_for_exchanges(0, timeout=WAIT)
        # Janus back (same port): the server reconnects by itself, media flows again.
        await janus.start()
        assert server.media_node is not None
        async with asyncio.timeout(WAIT):
            await server.media_node.wait_healthy()
        assert await healthz(server) == (200, "ok\n")
        await publisher.start()
        await publisher.wait_for_connected(1, timeout=WAIT)
        # each Subscriber makes its ended subscription again by itself (its restore)
        for sub, before in ((sub_a, subscriptions[0]), (sub_b, subscriptions[1])):
            again = await sub.wait_for_subscription(target, timeout=WAIT)
            assert again.exchange_id != before.exchange_id
            await again.wait_for_frames(5, timeout=WAIT)


async def test_a_resume_keeps_media_flowing(server: SignalingServer, join: SessionFactory) -> None:
    studio, viewer = await join("studio"), await join("viewer")
    async with (
        Publisher(studio, video=TestPatternTrack(W, H)) as publisher,
        Subscriber(viewer) as subscriber,
    ):
        await publisher.wait_for_connected(1, timeout=WAIT)
        subscription = await subscriber.subscribe(studio.participant_id or "", timeout=WAIT)
        before = (await subscription.wait_for_frames(3, timeout=WAIT)).video_frames
        resumed = asyncio.get_running_loop().create_future()
        viewer.on_reconnected(lambda event: resumed.done() or resumed.set_result(event))
        # dropped without an answer: sent again after the resume, answered once
        await viewer.simulate_scenario("connectionDrop")
        event = await asyncio.wait_for(resumed, WAIT)
        assert event.resumed and not event.state_reset
        counts = await subscription.wait_for_frames(before + 15, timeout=WAIT)
        assert counts.video_frames >= before + 15
        assert not subscription.closed and subscription.pc.connectionState == "connected"
        assert server.rooms.exchange_state(subscription.exchange_id) is not None


async def test_a_publisher_inside_its_resume_window_can_still_be_watched(
    server: SignalingServer, join: SessionFactory
) -> None:
    """Its upstream goes on through the media node: a new viewer gets it, not a 101.

    (Peer to peer the publisher must make the offer, so the target needs a
    connection; through a media node it does not.)
    """
    away = ReconnectPolicy(initial_delay=3600.0, jitter=False)  # it stays away
    studio, viewer = await join("studio", reconnect=away), await join("viewer")
    target = studio.participant_id or ""
    publisher = Publisher(studio, video=TestPatternTrack(W, H))
    drop: asyncio.Future[object] | None = None
    try:
        await publisher.start()
        await publisher.wait_for_connected(1, timeout=WAIT)
        async with Subscriber(viewer) as subscriber:
            # Its answer is lost with the connection: it would wait for the resume.
            drop = asyncio.ensure_future(studio.simulate_scenario("connectionDrop"))
            async with asyncio.timeout(WAIT):
                while server.rooms.is_connected(target) is not False:
                    await viewer.ping()
            subscription = await subscriber.subscribe(target, timeout=WAIT)
            counts = await subscription.wait_for_frames(5, timeout=WAIT)
            assert counts.width == W
            assert server.rooms.is_connected(target) is False  # still away
            await viewer.unsubscribe(target)  # and it may stop watching it (no 101 either)
            assert server.rooms.exchange_state(subscription.exchange_id) is None
            await subscription.close()
    finally:
        if drop is not None:
            drop.cancel()
            await asyncio.gather(drop, return_exceptions=True)
        await studio.close()
        await publisher.close()


async def test_nothing_is_left_running_after_close() -> None:
    baseline = udp_sockets()
    process = JanusProcess()
    await process.start()
    pid = process.pid
    assert pid is not None
    try:
        async with SignalingServer(secret=SECRET, media_node=process.url) as server:
            studio = Session(server.url, token=token(), name="studio", close_timeout=0.5)
            viewer = Session(server.url, token=token(), name="viewer", close_timeout=0.5)
            async with (
                studio,
                viewer,
                Publisher(studio, video=TestPatternTrack(W, H)) as publisher,
                Subscriber(viewer) as subscriber,
            ):
                await publisher.wait_for_connected(1, timeout=WAIT)
                subscription = await subscriber.subscribe(studio.participant_id or "")
                await subscription.wait_for_frames(3, timeout=WAIT)
                assert udp_sockets() > baseline
            media_node = server.media_node
            assert media_node is not None
        assert media_node.in_flight == 0 and not media_node.healthy
    finally:
        await process.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert open_peer_connections() == []
    assert udp_sockets() == baseline


async def test_a_missed_keepalive_counts_as_losing_the_media_node(
    janus: JanusProcess, make_server: ServerFactory, dial: SessionFactory
) -> None:
    server = await make_server(
        media_node=janus.url, media_node_timeout=0.3, media_node_keepalive=0.2
    )
    studio, viewer = await dial(server, "studio"), await dial(server, "viewer")
    heard, seen = Heard(studio), Heard(viewer)
    async with Publisher(studio, video=TestPatternTrack(W, H)) as publisher:
        await publisher.wait_for_connected(1, timeout=WAIT)
        await seen.wait("stream_published")
        assert len(await janus_rooms(janus.url)) == 1  # the session's room
        assert janus.pid is not None
        os.kill(janus.pid, signal.SIGSTOP)  # alive, connected, and silent
        try:
            lost = await heard.wait("session_error", lambda e: e.method is None)
            assert lost.code == 801 and lost.data["reason"] == "mediaNodeLost"
            await seen.wait("stream_unpublished")
            assert (await healthz(server))[0] == 503
        finally:
            os.kill(janus.pid, signal.SIGCONT)
        assert server.media_node is not None
        async with asyncio.timeout(WAIT):
            await server.media_node.wait_healthy()
        # The same Janus, on a new session: the lost session's room is gone from it.
        assert await janus_rooms(janus.url) == []
        await publisher.start()  # a new upstream on the new session
        await publisher.wait_for_connected(1, timeout=WAIT)


async def test_a_request_waiting_for_the_media_node_sent_again_after_a_resume_is_answered_once(
    janus: JanusProcess, server: SignalingServer
) -> None:
    """PROTOCOL.md section 8 through a media node: the answer waits (a ``Ticket``).

    The ``sdpOffer`` is with Janus (frozen) when the connection dies; the
    client resumes on a new one and sends it again with the same id. It is
    not handled twice (that would be a 303, the upstream being negotiated):
    one answer, on the new connection, once Janus has answered.
    """
    import json
    from typing import Any

    from websockets.asyncio.client import ClientConnection, connect
    from websockets.typing import Subprotocol

    from .test_errors import raw_offer

    def request(request_id: int, method: str, **params: object) -> str:
        return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})

    async def answer_to(ws: ClientConnection, request_id: int) -> tuple[Any, list[str | None]]:
        seen = []  # the methods of the frames before it (None: a response)
        async with asyncio.timeout(WAIT):
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("id") == request_id:
                    return frame, seen
                seen.append(frame.get("method"))

    pc, sdp = await raw_offer()
    subprotocols = [Subprotocol("roomsignal.v1")]
    assert janus.pid is not None and server.media_node is not None
    try:
        async with connect(server.url, subprotocols=subprotocols) as first:
            await first.send(request(1, "join", token=token(), name="studio"))
            joined, _ = await answer_to(first, 1)
            secret = joined["result"]["participantSecret"]
            await first.send(request(2, "publish", audio=False, video=True))
            published, _ = await answer_to(first, 2)
            upstream = published["result"]["exchangeId"]
            os.kill(janus.pid, signal.SIGSTOP)
            await first.send(request(3, "sdpOffer", exchangeId=upstream, sdp=sdp))
            async with asyncio.timeout(WAIT):
                await server.media_node.wait_in_flight()
            first.transport.abort()  # the connection dies with the answer owed
        async with connect(server.url, subprotocols=subprotocols) as again:
            resume = {"token": token(), "name": "studio", "oldParticipantSecret": secret}
            await again.send(request(4, "join", **resume, lastSeq=0))
            resumed, _ = await answer_to(again, 4)
            assert resumed["result"]["resumed"] is True
            await again.send(request(3, "sdpOffer", exchangeId=upstream, sdp=sdp))
            os.kill(janus.pid, signal.SIGCONT)
            answered, _ = await answer_to(again, 3)
            assert answered.get("result") == {}, answered
            # the media node's answer follows, and no second answer to id 3 ever comes
            await again.send(request(5, "ping"))
            _, between = await answer_to(again, 5)
            assert "sdpAnswer" in between and None not in between, between
    finally:
        os.kill(janus.pid, signal.SIGCONT)
        await pc.close()
