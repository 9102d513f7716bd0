"""A resumed session keeps its peer connections; a state reset closes them and says so."""

from __future__ import annotations

import asyncio
import logging

import pytest

from roomsignal import Reconnected, Session
from roomsignal.media import (
    MediaReset,
    Publisher,
    Subscriber,
    SubscriptionClosed,
    TestPatternTrack,
)
from roomsignal.server import SignalingServer

from .conftest import FAST, SECRET, WAIT, H, SessionFactory, W, token


def future_of(kind: type[object]) -> tuple[asyncio.Future[object], object]:
    future: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    def listener(event: object) -> None:
        if isinstance(event, kind) and not future.done():
            future.set_result(event)

    return future, listener


async def test_a_resumed_session_keeps_its_peer_connections(join: SessionFactory) -> None:
    studio, viewer = await join("studio"), await join("viewer")
    async with (
        Publisher(studio, video=TestPatternTrack(W, H)) as publisher,
        Subscriber(viewer) as subscriber,
    ):
        subscription = await subscriber.subscribe(studio.participant_id or "", timeout=WAIT)
        [publisher_pc] = publisher.connections.values()
        back, on_reconnected = future_of(Reconnected)
        viewer.on_reconnected(on_reconnected)
        # The server drops us without answering (the signaling, not the media); the
        # request is sent again after the resume and answered then.
        await viewer.simulate_scenario("connectionDrop")
        event = await asyncio.wait_for(back, WAIT)
        assert isinstance(event, Reconnected) and event.resumed
        before = subscription.frames.video_frames
        await subscription.wait_for_frames(before + 10, timeout=WAIT)
        assert not subscription.closed and subscription.pc.connectionState == "connected"
        assert list(publisher.connections.values()) == [publisher_pc]
        assert publisher_pc.connectionState == "connected"


async def test_a_state_reset_closes_the_connections_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "roomsignal.media")
    first = SignalingServer(secret=SECRET)
    await first.start()
    second = SignalingServer(secret=SECRET, port=first.port)
    studio = Session(first.url, token=token(), name="studio", reconnect=FAST, close_timeout=0.5)
    viewer = Session(first.url, token=token(), name="viewer", reconnect=FAST, close_timeout=0.5)
    try:
        async with studio, viewer:
            publisher = Publisher(studio, video=TestPatternTrack(W, H))
            async with publisher, Subscriber(viewer) as subscriber:
                pub_reset, on_pub_reset = future_of(MediaReset)
                sub_reset, on_sub_reset = future_of(MediaReset)
                publisher.on_reset(on_pub_reset)  # type: ignore[arg-type]
                subscriber.on_reset(on_sub_reset)  # type: ignore[arg-type]
                subscription = await subscriber.subscribe(studio.participant_id or "")
                [publisher_pc] = publisher.connections.values()
                waiting = asyncio.ensure_future(subscription.wait_for_frames(10**6))
                await first.close(graceful=False)  # a crash: the rooms are gone
                await second.start()  # ... and a fresh server on the same address
                reset = await asyncio.wait_for(sub_reset, WAIT)
                assert isinstance(reset, MediaReset)
                assert reset.exchange_ids == (subscription.exchange_id,)
                assert reset.participant_id == viewer.participant_id
                with pytest.raises(SubscriptionClosed) as closed:
                    await waiting
                assert closed.value.reason == "stateReset"
                assert subscription.pc.connectionState == "closed"
                reset = await asyncio.wait_for(pub_reset, WAIT)
                assert isinstance(reset, MediaReset) and reset.republished
                assert publisher_pc.connectionState == "closed"
                # Published again on the new seat: a new subscription gets media.
                again = await subscriber.subscribe(studio.participant_id or "", timeout=WAIT)
                await again.wait_for_frames(5, timeout=WAIT)
                said = [r.getMessage() for r in caplog.records if r.name == "roomsignal.media"]
                assert "session state reset: closed 1 subscription(s)" in said
                assert "session state reset: closed 1 peer connection(s) of the publisher" in said
    finally:
        await first.close()
        await second.close()
