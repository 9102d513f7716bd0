"""Real media through the reference server: decoded frames, two subscribers, clean closes."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from aiortc import MediaStreamTrack, RTCConfiguration
from av import VideoFrame
from av.frame import Frame

from roomsignal import MediaError, Session
from roomsignal.media import (
    Publisher,
    Subscriber,
    SubscriptionClosed,
    TestPatternTrack,
    ToneTrack,
    default_configuration,
)
from roomsignal.server import SignalingServer

from .conftest import SECRET, WAIT, H, SessionFactory, W, open_peer_connections, token, udp_sockets


class ReadBy(MediaStreamTrack):
    """A source that records which tasks read it."""

    kind = "video"

    def __init__(self, inner: MediaStreamTrack) -> None:
        super().__init__()
        self.inner = inner
        self.readers: set[asyncio.Task[object] | None] = set()

    async def recv(self) -> Frame:
        self.readers.add(asyncio.current_task())
        frame = await self.inner.recv()
        assert isinstance(frame, Frame)
        return frame


async def test_video_and_audio_frames_are_decoded(join: SessionFactory) -> None:
    pub_session, sub_session = await join("studio"), await join("viewer")
    async with (
        Publisher(pub_session, video=TestPatternTrack(W, H), audio=ToneTrack()) as publisher,
        Subscriber(sub_session) as subscriber,
    ):
        subscription = await subscriber.subscribe(pub_session.participant_id or "", timeout=WAIT)
        assert subscription.frames.video_frames >= 1  # subscribe() returned once media flowed
        counts = await subscription.wait_for_frames(15, audio=10, timeout=WAIT)
        assert counts.video_frames >= 15 and counts.audio_frames >= 10
        assert (counts.width, counts.height) == (W, H)
        assert counts.audio_sample_rate == 48000
        assert counts.first_frame_s is not None and 0 < counts.first_frame_s < WAIT
        # The user's own track gets the decoded pictures too, and they move.
        assert subscription.video is not None and subscription.audio is not None
        first = await asyncio.wait_for(subscription.video.recv(), WAIT)
        second = await asyncio.wait_for(subscription.video.recv(), WAIT)
        assert isinstance(first, VideoFrame) and isinstance(second, VideoFrame)
        assert (first.width, first.height) == (W, H)
        assert bytes(first.planes[0]) != bytes(second.planes[0])  # a moving pattern
        stats = await subscription.get_stats()
        inbound = [s for s in stats.values() if s.type == "inbound-rtp"]
        assert {s.kind for s in inbound} == {"audio", "video"}
        assert all(s.packetsReceived > 0 for s in inbound)
        assert subscription.pc.connectionState == "connected"
        assert list(publisher.subscribers.values()) == [sub_session.participant_id]


async def test_two_subscribers_share_one_source(join: SessionFactory) -> None:
    pub_session = await join("studio")
    source = ReadBy(TestPatternTrack(W, H))
    async with Publisher(pub_session, video=source) as publisher:
        target = pub_session.participant_id or ""
        subscribers = [Subscriber(await join(name)) for name in ("alice", "bob")]
        try:
            subscriptions = await asyncio.gather(
                *(s.subscribe(target, timeout=WAIT) for s in subscribers)
            )
            counts = await asyncio.gather(
                *(s.wait_for_frames(10, timeout=WAIT) for s in subscriptions)
            )
            assert all(c.video_frames >= 10 and (c.width, c.height) == (W, H) for c in counts)
            assert len(publisher.connections) == 2
            assert {s.exchange_id for s in subscriptions} == set(publisher.connections)
            assert len(source.readers) == 1  # one reader (the relay) feeds both
        finally:
            for s in subscribers:
                await s.close()


async def test_unsubscribe_closes_both_peer_connections(join: SessionFactory) -> None:
    pub_session, sub_session = await join("studio"), await join("viewer")
    async with Publisher(pub_session, video=TestPatternTrack(W, H)) as publisher:
        subscriber = Subscriber(sub_session)
        subscription = await subscriber.subscribe(pub_session.participant_id or "", timeout=WAIT)
        [publisher_pc] = publisher.connections.values()
        closed = asyncio.Event()
        publisher_pc.on("connectionstatechange", lambda: closed.set())
        await subscription.close()
        assert subscription.closed and subscription.close_reason == "closed"
        assert subscription.pc.connectionState == "closed"
        await asyncio.wait_for(closed.wait(), WAIT)  # subscriptionEnded reached the publisher
        await publisher.wait_for_exchanges(0, timeout=WAIT)
        assert publisher_pc.connectionState == "closed"
        assert dict(publisher.connections) == {}
        assert dict(subscriber.subscriptions) == {}
        try:
            await subscription.wait_for_frames(10**6, timeout=WAIT)
        except SubscriptionClosed as exc:
            assert exc.reason == "closed"
        else:
            raise AssertionError("a closed subscription gets no more frames")


async def test_unpublish_ends_the_subscriptions(join: SessionFactory) -> None:
    pub_session, sub_session = await join("studio"), await join("viewer")
    publisher = Publisher(pub_session, video=TestPatternTrack(W, H), audio=ToneTrack())
    async with publisher, Subscriber(sub_session) as subscriber:
        subscription = await subscriber.subscribe(pub_session.participant_id or "", timeout=WAIT)
        waiting = asyncio.ensure_future(subscription.wait_for_frames(10**6, timeout=WAIT))
        await publisher.unpublish()
        assert dict(publisher.connections) == {}
        try:
            await waiting
        except SubscriptionClosed as exc:
            assert exc.reason == "unpublished"
        else:
            raise AssertionError("the subscription should have ended")
        assert subscription.pc.connectionState == "closed"
        assert not publisher.publishing


async def test_nothing_is_left_open_after_close() -> None:
    udp_before = udp_sockets()
    async with SignalingServer(secret=SECRET) as server:
        pub_session = Session(server.url, token=token(), name="studio", close_timeout=0.5)
        sub_session = Session(server.url, token=token(), name="viewer", close_timeout=0.5)
        async with pub_session, sub_session:
            publisher = Publisher(pub_session, video=TestPatternTrack(W, H), audio=ToneTrack())
            subscriber = Subscriber(sub_session)
            async with publisher, subscriber:
                subscription = await subscriber.subscribe(pub_session.participant_id or "")
                await subscription.wait_for_frames(5, audio=5, timeout=WAIT)
                assert len(open_peer_connections()) == 2
                assert udp_sockets() > udp_before
    assert open_peer_connections() == []
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert udp_sockets() == udp_before


async def test_connections_use_host_candidates_only(join: SessionFactory) -> None:
    assert default_configuration().iceServers == []
    pub_session, sub_session = await join("studio"), await join("viewer")
    # iceServers=None means "aiortc's default" (a public STUN server) to aiortc: not here.
    configuration = RTCConfiguration(iceServers=None)
    publisher = Publisher(pub_session, video=TestPatternTrack(W, H), configuration=configuration)
    subscriber = Subscriber(sub_session, configuration=RTCConfiguration())
    assert publisher.configuration.iceServers == []
    assert subscriber.configuration.iceServers == []
    mine = RTCConfiguration(iceServers=[])  # a configuration of the caller's own
    assert Subscriber(sub_session, configuration=mine).configuration is mine  # used as given
    async with publisher, subscriber:
        subscription = await subscriber.subscribe(pub_session.participant_id or "", timeout=WAIT)
        for pc in (subscription.pc, *publisher.connections.values()):
            lines = pc.localDescription.sdp.splitlines()
            candidates = [line for line in lines if line.startswith("a=candidate:")]
            assert candidates and all(" typ host" in line for line in candidates)


def test_import_roomsignal_does_not_import_aiortc() -> None:
    code = (
        "import sys, roomsignal, roomsignal.client, roomsignal.server, roomsignal.cli; "
        "assert 'aiortc' not in sys.modules and 'av' not in sys.modules, 'media imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_without_aiortc_roomsignal_media_says_which_extra() -> None:
    code = (
        "import sys; sys.modules['aiortc'] = None\n"
        "try:\n    import roomsignal.media\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "roomsignal.media needs aiortc: pip install 'roomsignal[media]'"


async def test_a_leave_after_the_exchange_closes_the_other_side(join: SessionFactory) -> None:
    studio, viewer, other = await join("studio"), await join("viewer"), await join("other")
    async with Publisher(studio, video=TestPatternTrack(W, H)) as publisher:
        subscriber, watcher = Subscriber(viewer), Subscriber(other)
        subscription = await subscriber.subscribe(studio.participant_id or "", timeout=WAIT)
        await watcher.subscribe(studio.participant_id or "", timeout=WAIT)
        await publisher.wait_for_exchanges(2, timeout=WAIT)
        await other.close()  # the subscriber leaves: the publisher closes its connection
        await publisher.wait_for_exchanges(1, timeout=WAIT)
        assert list(publisher.subscribers.values()) == [viewer.participant_id]
        waiting = asyncio.ensure_future(subscription.wait_for_frames(10**6, timeout=WAIT))
        await studio.close()  # the publisher leaves: the subscription ends
        try:
            await waiting
        except SubscriptionClosed as exc:
            assert exc.reason == "left"
        else:
            raise AssertionError("the subscription should have ended")
        assert subscription.pc.connectionState == "closed"
        await subscriber.close()
        await watcher.close()


async def test_nothing_is_left_open_after_failed_and_trickled_exchanges() -> None:
    udp_before = udp_sockets()
    async with SignalingServer(secret=SECRET, sdp_timeout=0.4) as server:
        sessions = [
            Session(server.url, token=token(), name=name, close_timeout=0.5)
            for name in ("studio", "mute", "viewer")
        ]
        studio, mute, viewer = sessions
        for session in sessions:
            await session.connect()
        publisher = Publisher(studio, video=TestPatternTrack(W, H), trickle=True)
        subscriber = Subscriber(viewer, trickle=True)
        async with publisher, subscriber:
            subscription = await subscriber.subscribe(studio.participant_id or "")
            await subscription.wait_for_frames(5, timeout=WAIT)
            await mute.publish(audio=True, video=False)  # never offers: 303
            try:
                await subscriber.subscribe(mute.participant_id or "", timeout=WAIT)
            except MediaError as exc:
                assert exc.code == 303
            else:
                raise AssertionError("expected 303")
        for session in sessions:
            await session.close()
    assert open_peer_connections() == []
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert udp_sockets() == udp_before
