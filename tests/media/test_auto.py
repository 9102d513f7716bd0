"""``Subscriber(auto_subscribe=...)``: a viewer bot receives every stream published in the room.

Peer to peer here (the reference server without a media node); tests/sfu
runs the same through Janus.
"""

from __future__ import annotations

import pytest

from roomsignal.media import (
    Publisher,
    Subscriber,
    Subscription,
    SubscriptionClosed,
    TestPatternTrack,
)
from roomsignal.protocol import Participant

from .conftest import WAIT, H, SessionFactory, W


async def test_a_viewer_receives_publishers_there_before_and_after_it(
    join: SessionFactory,
) -> None:
    early = await join("early")
    async with Publisher(early, video=TestPatternTrack(W, H)):
        viewer = await join("viewer")
        made: list[Subscription] = []
        async with Subscriber(viewer, auto_subscribe=True) as subscriber:
            subscriber.on_subscribed(made.append)
            # There before the viewer: subscribed to on entering.
            first = await subscriber.wait_for_subscription(early.participant_id, timeout=WAIT)
            await first.wait_for_frames(3, timeout=WAIT)
            # Comes after it: subscribed to when its stream is published.
            late = await join("late")
            async with Publisher(late, video=TestPatternTrack(W, H)):
                second = await subscriber.wait_for_subscription(late.participant_id, timeout=WAIT)
                await second.wait_for_frames(3, timeout=WAIT)
                assert {s.target for s in subscriber.subscriptions.values()} == {
                    early.participant_id,
                    late.participant_id,
                }
            # Its unpublish ends that subscription; the other goes on.
            with pytest.raises(SubscriptionClosed):
                await second.wait_for_frames(10**9, timeout=WAIT)
            assert second.close_reason == "unpublished"
            assert subscriber.subscription_to(late.participant_id) is None
            assert subscriber.subscription_to(early.participant_id) is first
            assert {s.target for s in made} == {early.participant_id, late.participant_id}


async def test_a_viewer_that_publishes_nothing_itself_is_never_subscribed_to_itself(
    join: SessionFactory,
) -> None:
    studio = await join("studio")
    async with Publisher(studio, video=TestPatternTrack(W, H)):
        both = await join("both")
        async with (
            Publisher(both, video=TestPatternTrack(W, H)),
            Subscriber(both, auto_subscribe=True) as subscriber,
        ):
            got = await subscriber.wait_for_subscription(studio.participant_id, timeout=WAIT)
            assert got.target == studio.participant_id
            assert subscriber.subscription_to(both.participant_id) is None


async def test_a_predicate_narrows_auto_subscribe(join: SessionFactory) -> None:
    host, guest = await join("host"), await join("guest")
    async with (
        Publisher(host, video=TestPatternTrack(W, H)),
        Publisher(guest, video=TestPatternTrack(W, H)),
    ):
        viewer = await join("viewer")

        def hosts_only(participant: Participant) -> bool:
            return participant.name == "host"

        async with Subscriber(viewer, auto_subscribe=hosts_only) as subscriber:
            await subscriber.wait_for_subscription(host.participant_id, timeout=WAIT)
            # The guest publishes too, and is left alone.
            assert [s.target for s in subscriber.subscriptions.values()] == [host.participant_id]
            assert not subscriber._follower.busy


async def test_without_auto_subscribe_nothing_is_subscribed(join: SessionFactory) -> None:
    studio = await join("studio")
    async with Publisher(studio, video=TestPatternTrack(W, H)):
        viewer = await join("viewer")
        async with Subscriber(viewer) as subscriber:
            try:
                await subscriber.wait_for_subscription(studio.participant_id, timeout=0.5)
            except TimeoutError:
                pass
            else:
                raise AssertionError("subscribed without auto_subscribe")
            assert not subscriber.subscriptions


async def test_close_cancels_a_subscription_being_made(join: SessionFactory) -> None:
    studio = await join("studio")
    async with Publisher(studio, video=TestPatternTrack(W, H)):
        viewer = await join("viewer")
        subscriber = Subscriber(viewer, auto_subscribe=True)
        await subscriber.start()
        assert subscriber._follower.busy  # the task subscribing to studio
        await subscriber.close()
        assert not subscriber._follower.busy
        assert not subscriber.subscriptions
