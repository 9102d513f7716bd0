"""Media through a real Janus: one upstream, many subscribers, held subscribes, endings."""

from __future__ import annotations

import asyncio

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from av import VideoFrame

from roomsignal.media import Publisher, Subscriber, TestPatternTrack, default_configuration
from roomsignal.server import SignalingServer
from roomsignal.server._janus_process import JanusProcess

from .conftest import (
    WAIT,
    H,
    Heard,
    SessionFactory,
    W,
    candidate_addresses,
    janus_rooms,
    own_addresses,
)


async def test_three_subscribers_decode_frames_from_one_upstream(join: SessionFactory) -> None:
    pub_session = await join("studio")
    requests: list[object] = []
    pub_session.on_subscribe_request(requests.append)
    async with Publisher(pub_session, video=TestPatternTrack(W, H)) as publisher:
        assert publisher.upstream_exchange_id is not None
        await publisher.wait_for_connected(1, timeout=WAIT)
        target = pub_session.participant_id or ""
        subscribers = [Subscriber(await join(name)) for name in ("alice", "bob", "carol")]
        try:
            subscriptions = await asyncio.gather(
                *(s.subscribe(target, timeout=WAIT) for s in subscribers)
            )
            for subscription in subscriptions:
                counts = await subscription.wait_for_frames(10, timeout=WAIT)
                assert (counts.width, counts.height) == (W, H)
            # One upload, whatever the number of subscribers; no subscribeRequest.
            assert list(publisher.connections) == [publisher.upstream_exchange_id]
            assert requests == []
        finally:
            for subscriber in subscribers:
                await subscriber.close()


async def raw_publisher() -> RTCPeerConnection:
    pc = RTCPeerConnection(default_configuration())
    pc.addTransceiver(TestPatternTrack(W, H), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def test_a_subscribe_before_the_upstream_is_up_is_held(join: SessionFactory) -> None:
    studio, viewer = await join("studio"), await join("viewer")
    heard, seen = Heard(studio), Heard(viewer)
    result = await studio.publish_result(video=True, audio=False)
    assert result.exchange_id is not None
    # Answered at once, held: no offer yet, and nobody was told of a stream.
    exchange_id = await viewer.subscribe(studio.participant_id or "")
    assert seen.of("sdp_offer") == [] and seen.of("stream_published") == []
    sender = await raw_publisher()
    receiver = RTCPeerConnection(default_configuration())
    frames: asyncio.Queue[object] = asyncio.Queue()

    @receiver.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        async def read() -> None:
            while True:
                await frames.put(await track.recv())

        tasks.append(asyncio.ensure_future(read()))

    tasks: list[asyncio.Future[None]] = []
    try:
        await studio.send_offer(result.exchange_id, sender.localDescription.sdp)
        answer = await heard.wait("sdp_answer")
        assert answer.from_ == "@media" and answer.exchange_id == result.exchange_id
        await sender.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
        offer = await seen.wait("sdp_offer")
        # streamPublished came once the upstream was up, before the held offer.
        kinds = [k for k, _ in seen.events if k in ("stream_published", "sdp_offer")]
        assert kinds == ["stream_published", "sdp_offer"]
        assert offer.exchange_id == exchange_id and offer.from_ == studio.participant_id
        await receiver.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        await receiver.setLocalDescription(await receiver.createAnswer())
        await viewer.send_answer(exchange_id, receiver.localDescription.sdp)
        frame = await asyncio.wait_for(frames.get(), WAIT)
        assert isinstance(frame, VideoFrame) and (frame.width, frame.height) == (W, H)
        # Media stayed on this machine: every candidate is one of its own addresses.
        own = own_addresses()
        for sdp in (answer.sdp, offer.sdp, sender.localDescription.sdp):
            assert candidate_addresses(sdp) and candidate_addresses(sdp) <= own
        assert heard.of("subscribe_request") == []
    finally:
        for task in tasks:
            task.cancel()
        await sender.close()
        await receiver.close()


async def test_republish_and_unpublish_end_the_subscriptions(
    janus: JanusProcess, server: SignalingServer, join: SessionFactory
) -> None:
    studio, viewer = await join("studio"), await join("viewer")
    seen = Heard(viewer)
    async with (
        Publisher(studio, video=TestPatternTrack(W, H)) as publisher,
        Subscriber(viewer) as subscriber,
    ):
        await publisher.wait_for_connected(1, timeout=WAIT)
        target = studio.participant_id or ""
        subscription = await subscriber.subscribe(target, timeout=WAIT)
        await subscription.wait_for_frames(3, timeout=WAIT)
        # The same flags: the same ids, nothing ends.
        same = await studio.publish_result(video=True, audio=False, restore=False)
        assert same.exchange_id == publisher.upstream_exchange_id
        assert same.stream_id == publisher.stream_id
        # Other flags: the upstream ends (subscriptions: "republished"), a new one opens.
        other = await studio.publish_result(video=True, audio=True, restore=False)
        assert other.exchange_id not in (None, same.exchange_id)
        ended = await seen.wait("subscription_ended")
        assert ended.exchange_id == subscription.exchange_id and ended.reason == "republished"
        assert ended.participant_id == target
        await studio.unpublish()
        assert seen.of("stream_unpublished") == []  # the new upstream was never up
        # Unpublish while up: subscribers' ends say "unpublished", others hear it.
        await publisher.start()
        await publisher.wait_for_connected(1, timeout=WAIT)
        await seen.wait("stream_published", lambda e: len(seen.of("stream_published")) >= 2)
        # subscribing again (after a republish the app's own call: only a lost
        # media node is restored by itself, and subscribe() would share that)
        again = await subscriber.subscribe(target, timeout=WAIT)
        assert again.exchange_id != subscription.exchange_id
        await again.wait_for_frames(3, timeout=WAIT)
        await publisher.unpublish()
        ended = await seen.wait("subscription_ended", lambda e: e.exchange_id == again.exchange_id)
        assert ended.reason == "unpublished"
        await seen.wait("stream_unpublished")
        await publisher.wait_for_exchanges(0, timeout=WAIT)
        await subscriber.close()
        # The session's room on Janus went with its last exchange.
        assert server.media_node is not None
        async with asyncio.timeout(WAIT):
            await server.media_node.wait_idle()
        assert await janus_rooms(janus.url) == []


async def test_two_publishers_in_one_room_and_a_viewer_of_both(join: SessionFactory) -> None:
    a, b, viewer = await join("a"), await join("b"), await join("viewer")
    async with (
        Publisher(a, video=TestPatternTrack(W, H)) as pub_a,
        Publisher(b, video=TestPatternTrack(W // 2, H // 2)) as pub_b,
        Subscriber(viewer) as subscriber,
    ):
        await pub_a.wait_for_connected(1, timeout=WAIT)
        await pub_b.wait_for_connected(1, timeout=WAIT)
        from_a, from_b = await asyncio.gather(
            subscriber.subscribe(a.participant_id or "", timeout=WAIT),
            subscriber.subscribe(b.participant_id or "", timeout=WAIT),
        )
        counts_a = await from_a.wait_for_frames(3, timeout=WAIT)
        counts_b = await from_b.wait_for_frames(3, timeout=WAIT)
        assert (counts_a.width, counts_b.width) == (W, W // 2)  # each its own feed


async def test_a_hangup_by_janus_ends_the_exchange(join: SessionFactory) -> None:
    studio, viewer = await join("studio"), await join("viewer")
    heard, seen = Heard(studio), Heard(viewer)
    async with (
        Publisher(studio, video=TestPatternTrack(W, H)) as publisher,
        Subscriber(viewer) as subscriber,
    ):
        await publisher.wait_for_connected(1, timeout=WAIT)
        subscription = await subscriber.subscribe(studio.participant_id or "", timeout=WAIT)
        await subscription.wait_for_frames(3, timeout=WAIT)
        # The viewer's peer connection closes (DTLS close_notify): Janus hangs up.
        await subscription.pc.close()
        ended = await seen.wait("subscription_ended")
        assert ended.exchange_id == subscription.exchange_id
        assert ended.reason == "mediaNodeHangup"
        # The publisher's own closes: its upstream ends as by unpublish.
        upstream = publisher.upstream_exchange_id
        assert upstream is not None
        await publisher.connections[upstream].close()
        await seen.wait("stream_unpublished")
        assert heard.of("subscription_ended") == []


async def test_close_session_hangs_up_everything_on_janus(
    janus: JanusProcess, server: SignalingServer, join: SessionFactory
) -> None:
    from roomsignal.tokens import mint

    from .conftest import SECRET

    host = await join("host", token=mint(SECRET, "room", roles=["moderator"]))
    viewer = await join("viewer")
    async with (
        Publisher(host, video=TestPatternTrack(W, H)) as publisher,
        Subscriber(viewer) as subscriber,
    ):
        await publisher.wait_for_connected(1, timeout=WAIT)
        subscription = await subscriber.subscribe(host.participant_id or "", timeout=WAIT)
        await subscription.wait_for_frames(3, timeout=WAIT)
        assert await janus_rooms(janus.url) != []
        await host.close_session()
        assert server.media_node is not None
        async with asyncio.timeout(WAIT):
            await server.media_node.wait_idle()
        assert await janus_rooms(janus.url) == []
        assert server.rooms.stats()["exchanges"] == 0
        assert server.rooms._upstreams == {}
