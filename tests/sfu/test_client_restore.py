"""roomsignal.media through a real Janus: auto_subscribe, and media back by itself after Janus dies.

After ``kill -9`` of Janus and its restart, the ``Publisher`` publishes again
and the ``Subscriber`` subscribes again with no call from the app, and both
say so (``on_restored``); frames flow again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from roomsignal import ErrorCode, SessionError
from roomsignal.media import (
    MEDIA_NODE_LOST,
    MediaRestored,
    Publisher,
    Subscriber,
    Subscription,
    TestPatternTrack,
    is_media_node_lost,
)
from roomsignal.protocol import PublishResult
from roomsignal.server import SignalingServer
from roomsignal.server._janus_process import JanusProcess

from .conftest import WAIT, H, Heard, SessionFactory, W


async def test_auto_subscribe_viewers_get_every_stream_from_one_upstream_each(
    join: SessionFactory,
) -> None:
    host, guest = await join("host"), await join("guest")
    requests: list[object] = []
    host.on_subscribe_request(requests.append)
    guest.on_subscribe_request(requests.append)
    async with Publisher(host, video=TestPatternTrack(W, H)) as first:
        viewers = [await join(f"viewer-{n}") for n in range(3)]
        subscribers = [Subscriber(v, auto_subscribe=True) for v in viewers]
        try:
            for subscriber in subscribers:
                await subscriber.start()
            for subscriber in subscribers:
                got = await subscriber.wait_for_subscription(host.participant_id, timeout=WAIT)
                await got.wait_for_frames(5, timeout=WAIT)
            # A second publisher comes: every viewer gets it too, by itself.
            async with Publisher(guest, video=TestPatternTrack(W, H)) as second:
                for subscriber in subscribers:
                    got = await subscriber.wait_for_subscription(guest.participant_id, timeout=WAIT)
                    await got.wait_for_frames(5, timeout=WAIT)
                # One upstream each, whatever the number of viewers; no subscribeRequest.
                assert list(first.connections) == [first.upstream_exchange_id]
                assert list(second.connections) == [second.upstream_exchange_id]
                assert requests == []
        finally:
            for subscriber in subscribers:
                await subscriber.close()


async def test_after_kill_9_of_janus_media_comes_back_with_no_app_code(
    janus: JanusProcess, join: SessionFactory
) -> None:
    studio, viewer = await join("studio"), await join("viewer")
    losses: list[SessionError] = []
    viewer.on_session_error(
        lambda error: losses.append(error) if is_media_node_lost(error) else None
    )
    published: list[MediaRestored] = []
    subscribed: list[MediaRestored] = []
    republished = asyncio.Event()

    def on_published(event: MediaRestored) -> None:
        published.append(event)
        republished.set()

    async with (
        Publisher(studio, video=TestPatternTrack(W, H)) as publisher,
        Subscriber(viewer) as subscriber,
    ):
        publisher.on_restored(on_published)
        subscriber.on_restored(subscribed.append)
        target = studio.participant_id
        before = await subscriber.subscribe(target, timeout=WAIT)  # the app's only subscribe
        await before.wait_for_frames(5, timeout=WAIT)
        old_upstream = publisher.upstream_exchange_id

        janus.kill()
        await janus.wait_stopped()
        # The server tells everyone; the subscription ends, the upstream too.
        await asyncio.wait_for(_closed(before), WAIT)
        assert before.close_reason == MEDIA_NODE_LOST
        await janus.start()  # same port: the server reconnects by itself

        after = await subscriber.wait_for_subscription(target, timeout=3 * WAIT)
        counts = await after.wait_for_frames(10, timeout=WAIT)
        assert counts.video_frames >= 10
        assert after is not before and after.exchange_id != before.exchange_id
        await asyncio.wait_for(republished.wait(), WAIT)
        assert losses and losses[0].data["reason"] == MEDIA_NODE_LOST
        (again,) = published
        assert again.reason == MEDIA_NODE_LOST
        assert again.exchange_ids == (old_upstream,)
        assert again.participant_id == target
        assert again.exchange_id == publisher.upstream_exchange_id != old_upstream
        (back,) = subscribed
        assert back.reason == MEDIA_NODE_LOST and back.participant_id == target
        assert back.exchange_ids == (before.exchange_id,)
        assert back.subscription is after and back.exchange_id == after.exchange_id
        assert list(publisher.connections) == [publisher.upstream_exchange_id]
        # An app that subscribes again itself (as it had to before) gets the same one.
        assert await subscriber.subscribe(target, timeout=WAIT) is after


async def _closed(subscription: Subscription) -> None:
    """Return once ``subscription`` has ended (whatever the reason)."""
    try:
        await subscription.wait_for_frames(10**9)
    except Exception:
        return


async def test_a_publisher_closed_while_the_media_node_is_away_leaves_no_task(
    janus: JanusProcess, join: SessionFactory
) -> None:
    studio = await join("studio")
    publisher = Publisher(studio, video=TestPatternTrack(W, H))
    await publisher.start()
    await publisher.wait_for_connected(1, timeout=WAIT)
    tried = asyncio.Event()  # the Republisher's publish, answered 801: no media node yet
    studio.on_session_error(lambda error: tried.set() if error.method == "publish" else None)
    janus.kill()
    await janus.wait_stopped()
    await asyncio.wait_for(tried.wait(), WAIT)
    assert publisher._republisher.restoring  # and it goes on trying
    await publisher.close()
    assert not publisher._republisher.restoring
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("republish")]


@pytest.mark.parametrize(
    ("how", "sent"), [("unpublish", True), ("close", True), ("unpublish", False)]
)
async def test_unpublish_during_the_restore_publish_leaves_nothing_published(
    janus: JanusProcess, join: SessionFactory, server: SignalingServer, how: str, sent: bool
) -> None:
    """``sent``: the restore's publish reached the server; else it is cancelled before.

    Not sent, the server never publishes again and answers the unpublish 105
    (not publishing), which ``unpublish()`` takes as done.
    """
    studio, viewer = await join("studio"), await join("viewer")
    seen, heard = Heard(viewer), Heard(studio)
    publisher = Publisher(studio, video=TestPatternTrack(W, H))
    try:
        await publisher.start()
        await publisher.wait_for_connected(1, timeout=WAIT)
        await seen.wait("stream_published")
        janus.kill()
        await janus.wait_stopped()
        await seen.wait("stream_unpublished")
        await janus.start()  # same port: the server reconnects by itself
        assert server.media_node is not None
        async with asyncio.timeout(WAIT):
            await server.media_node.wait_healthy()
        # The app unpublishes (or closes) while the restore's publish is in
        # flight (and this one gets through: the media node is back).
        in_flight: list[asyncio.Task[None]] = []
        called = asyncio.Event()
        publish_result = studio.publish_result

        async def publish_during_unpublish(**options: Any) -> PublishResult:
            # (the unpublish runs once this publish is sent and waits for its answer)
            in_flight.append(asyncio.create_task(getattr(publisher, how)()))
            called.set()
            if not sent:
                await asyncio.Event().wait()  # the unpublish cancels it: never sent
            return await publish_result(**options)

        studio.publish_result = publish_during_unpublish  # type: ignore[method-assign]
        await asyncio.wait_for(called.wait(), 3 * WAIT)
        await asyncio.wait_for(in_flight[0], WAIT)
        assert not publisher.publishing and not publisher._republisher.restoring
        await publisher.wait_for_exchanges(0, timeout=WAIT)
        # Nothing stays on the server: no upstream, nobody told it publishes.
        assert server.rooms._upstreams == {}
        assert seen.of("stream_published")[1:] == []
        refused = [e.code for e in heard.of("session_error") if e.method == "unpublish"]
        if not sent and how == "unpublish":  # no publish reached the server: 105, taken as done
            assert refused == [ErrorCode.USER_NOT_STREAMING_ERROR_CODE]
    finally:
        await publisher.close()
