"""Failed exchanges raise the catalog's exception, and the same error reaches the listeners."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from roomsignal import ErrorCode, MediaError, Session, SessionError, UserError
from roomsignal.media import Publisher, Subscriber, TestPatternTrack, ToneTrack
from roomsignal.protocol import SdpNotificationParams, SubscribeRequestParams
from roomsignal.server import SignalingServer

from .conftest import WAIT, H, SessionFactory, W


class Heard:
    """Every error one session's listener received, awaitable by code."""

    def __init__(self) -> None:
        self.errors: list[SessionError] = []
        self._changed = asyncio.Event()

    def __call__(self, error: SessionError) -> None:
        self.errors.append(error)
        self._changed.set()

    async def code(self, code: int, timeout: float = WAIT) -> SessionError:
        async with asyncio.timeout(timeout):
            while True:
                for error in self.errors:
                    if error.code == code:
                        return error
                self._changed.clear()
                await self._changed.wait()


async def test_a_publisher_that_never_answers_gives_303_at_sdp_timeout(
    impatient: SignalingServer, join: SessionFactory
) -> None:
    mute, viewer = await join("mute", impatient.url), await join("viewer", impatient.url)
    await mute.publish(audio=True, video=True)  # ... but never offers
    heard = Heard()
    viewer.on_session_error(heard)
    subscriber = Subscriber(viewer)
    started = time.perf_counter()
    with pytest.raises(MediaError) as raised:
        await subscriber.subscribe(mute.participant_id or "", timeout=WAIT)
    assert time.perf_counter() - started < WAIT
    assert raised.value.code == ErrorCode.MEDIA_ENDPOINT_ERROR_CODE
    error = await heard.code(303)
    assert error.data["exchangeId"] == raised.value.error.data["exchangeId"]
    assert dict(subscriber.subscriptions) == {}
    await subscriber.close()
    assert [e.code for e in heard.errors] == [303]  # nothing else, no 102 on close


async def test_a_publisher_leaving_mid_exchange_gives_103(join: SessionFactory) -> None:
    leaver, viewer = await join("leaver"), await join("viewer")
    await leaver.publish(audio=False, video=True)

    async def leave(event: SubscribeRequestParams) -> None:
        await leaver.close()  # walks out instead of offering

    leaver.on_subscribe_request(leave)
    heard = Heard()
    viewer.on_session_error(heard)
    subscriber = Subscriber(viewer)
    with pytest.raises(UserError) as raised:
        await subscriber.subscribe(leaver.participant_id or "", timeout=WAIT)
    assert raised.value.code == ErrorCode.USER_CLOSED_ERROR_CODE
    error = await heard.code(103)
    assert error.data["participantId"] == leaver.participant_id
    assert dict(subscriber.subscriptions) == {}
    await subscriber.close()


async def test_the_publisher_closes_an_exchange_whose_subscriber_walks_out(
    join: SessionFactory,
) -> None:
    studio, walker = await join("studio"), await join("walker")
    heard = Heard()
    studio.on_session_error(heard)
    async with Publisher(studio, video=TestPatternTrack(W, H)) as publisher:
        offered = asyncio.Event()

        async def walk_out(event: SdpNotificationParams) -> None:
            offered.set()
            await walker.close()  # leaves before answering

        walker.on_sdp_offer(walk_out)
        await walker.subscribe(studio.participant_id or "")
        await asyncio.wait_for(offered.wait(), WAIT)
        error = await heard.code(103)
        await publisher.wait_for_exchanges(0, timeout=WAIT)
        assert error.data["exchangeId"] not in publisher.connections
        assert dict(publisher.connections) == {}


async def test_the_publisher_closes_an_exchange_never_answered(
    impatient: SignalingServer, join: SessionFactory
) -> None:
    studio, silent = await join("studio", impatient.url), await join("silent", impatient.url)
    heard = Heard()
    studio.on_session_error(heard)
    async with Publisher(studio, video=TestPatternTrack(W, H)) as publisher:
        exchange_id = await silent.subscribe(studio.participant_id or "")
        error = await heard.code(303)
        assert error.data["exchangeId"] == exchange_id
        await publisher.wait_for_exchanges(0, timeout=WAIT)
        assert dict(publisher.connections) == {}


async def test_105_102_and_101_raise_and_reach_the_listeners(join: SessionFactory) -> None:
    idle, viewer = await join("idle"), await join("viewer")
    heard = Heard()
    viewer.on_session_error(heard)
    async with Subscriber(viewer) as subscriber:
        with pytest.raises(UserError) as not_streaming:
            await subscriber.subscribe(idle.participant_id or "")
        assert not_streaming.value.code == ErrorCode.USER_NOT_STREAMING_ERROR_CODE
        with pytest.raises(UserError) as nobody:
            await subscriber.subscribe("p_nobody")
        assert nobody.value.code == ErrorCode.USER_NOT_FOUND_ERROR_CODE
        with pytest.raises(UserError) as myself:
            await subscriber.subscribe(viewer.participant_id or "")
        assert myself.value.code == ErrorCode.USER_GENERIC_ERROR_CODE
        assert (await heard.code(105)).method == "subscribe"
        assert (await heard.code(102)).data["participantId"] == "p_nobody"
        assert dict(subscriber.subscriptions) == {}


async def test_a_timeout_before_media_closes_the_subscription(join: SessionFactory) -> None:
    mute, viewer = await join("mute"), await join("viewer")
    await mute.publish(audio=True, video=False)
    ended = asyncio.Event()
    mute.on_subscription_ended(lambda event: ended.set())
    subscriber = Subscriber(viewer)
    with pytest.raises(TimeoutError):
        await subscriber.subscribe(mute.participant_id or "", timeout=0.2)
    await asyncio.wait_for(ended.wait(), WAIT)  # it unsubscribed on the way out
    assert dict(subscriber.subscriptions) == {}
    await subscriber.close()


async def test_bad_candidates_are_dropped_with_a_warning(
    join: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    studio, viewer = await join("studio"), await join("viewer")
    async with Publisher(studio, audio=ToneTrack()) as publisher, Subscriber(viewer) as subscriber:
        subscription = await subscriber.subscribe(studio.participant_id or "", timeout=WAIT)
        with caplog.at_level(logging.WARNING, "roomsignal.media"):
            await viewer.send_ice_candidate(subscription.exchange_id, "not a candidate")
            await subscription.wait_for_frames(0, audio=subscription.frames.audio_frames + 10)
            await publisher.wait_for_connected(1, timeout=WAIT)
        assert "dropped a bad candidate" in caplog.text
        assert subscription.pc.connectionState == "connected"


def test_a_publisher_needs_tracks_of_the_right_kind() -> None:
    session = Session("ws://127.0.0.1:9", token="t", name="n")
    with pytest.raises(ValueError, match="video track, an audio track"):
        Publisher(session)
    with pytest.raises(ValueError, match="must be a video track"):
        Publisher(session, video=ToneTrack())
    with pytest.raises(ValueError, match="must be an audio track"):
        Publisher(session, audio=TestPatternTrack())
    with pytest.raises(ValueError, match="even"):
        TestPatternTrack(161, 120)
    with pytest.raises(ValueError, match="frequency"):
        ToneTrack(frequency=30_000)


async def test_a_refused_publish_raises_and_stops_the_tracks(join: SessionFactory) -> None:
    viewer = await join("viewer", participant_type="viewer")
    heard = Heard()
    viewer.on_session_error(heard)
    track = TestPatternTrack(W, H)
    with pytest.raises(UserError) as raised:
        async with Publisher(viewer, video=track):
            raise AssertionError("a viewer may not publish")
    assert raised.value.code == ErrorCode.USER_NOT_AUTHORIZED_ERROR_CODE
    assert (await heard.code(106)).method == "publish"
    assert track.readyState == "ended"
