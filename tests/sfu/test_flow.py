"""Media through a real Janus: one upstream, many subscribers, held subscribes, endings."""

from __future__ import annotations

import asyncio

from roomsignal.media import Publisher, Subscriber, TestPatternTrack

from .conftest import WAIT, H, SessionFactory, W


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
