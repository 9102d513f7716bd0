"""Session basics against the real reference server: join, media, chat, sync, state."""

from __future__ import annotations

import asyncio

import pytest

from roomsignal import Connected, SessionState, UserError
from roomsignal.protocol import (
    IceCandidateNotificationParams,
    MessageReceivedParams,
    ParticipantJoinedParams,
    ParticipantLeftParams,
    SdpNotificationParams,
    StreamPublishedParams,
    StreamUnpublishedParams,
    SubscribeRequestParams,
    SyncDataParams,
)
from roomsignal.server import SignalingServer

from .conftest import Recorder, SessionFactory, token


async def test_join_and_leave_with_async_with(make_session: SessionFactory) -> None:
    alice = make_session("alice")
    connected = Recorder()
    alice.on_connected(connected)
    assert alice.state is SessionState.IDLE
    async with alice:
        assert alice.state is SessionState.JOINED
        assert alice.participant_id
        assert alice.session_id == "room"
        (event,) = await connected.wait_for(1)
        assert isinstance(event, Connected)
        assert event.participant_id == alice.participant_id
        assert isinstance(await alice.ping(), float)
    assert alice.state is SessionState.CLOSED


async def test_participants_are_kept_current(make_session: SessionFactory) -> None:
    alice, bob = make_session("alice"), make_session("bob")
    joined, left = Recorder(), Recorder()
    published, unpublished = Recorder(), Recorder()
    alice.on_participant_joined(joined)
    alice.on_participant_left(left)
    alice.on_stream_published(published)
    alice.on_stream_unpublished(unpublished)
    await alice.connect()
    assert dict(alice.participants) == {}
    await bob.connect()
    (event,) = await joined.wait_for(1)
    assert isinstance(event, ParticipantJoinedParams)
    assert event.participant.name == "bob"
    assert bob.participant_id in alice.participants
    assert [p.name for p in bob.participants.values()] == ["alice"]

    await bob.publish(audio=True, video=False)
    (pub,) = await published.wait_for(1)
    assert isinstance(pub, StreamPublishedParams)
    assert (pub.audio, pub.video) == (True, False)
    streams = alice.participants[bob.participant_id or ""].streams
    assert streams is not None and streams.audio and not streams.video
    await bob.unpublish()
    (unpub,) = await unpublished.wait_for(1)
    assert isinstance(unpub, StreamUnpublishedParams)
    assert alice.participants[bob.participant_id or ""].streams is None

    bob_id = bob.participant_id
    await bob.close()
    (gone,) = await left.wait_for(1)
    assert isinstance(gone, ParticipantLeftParams)
    assert (gone.participant_id, gone.reason) == (bob_id, "left")
    assert bob_id not in alice.participants


async def test_full_sdp_exchange_with_trickled_ice(make_session: SessionFactory) -> None:
    publisher, subscriber = make_session("pub"), make_session("sub")
    requests, answers, pub_ice = Recorder(), Recorder(), Recorder()
    offers, sub_ice = Recorder(), Recorder()

    @publisher.on_subscribe_request
    async def offer(event: SubscribeRequestParams) -> None:
        requests(event)
        await publisher.send_offer(event.exchange_id, "v=0 offer")
        await publisher.send_ice_candidate(event.exchange_id, "cand-pub", sdp_mid="0")

    @subscriber.on_sdp_offer
    async def answer(event: SdpNotificationParams) -> None:
        offers(event)
        await subscriber.send_answer(event.exchange_id, "v=0 answer")

    publisher.on_sdp_answer(answers)
    publisher.on_ice_candidate(pub_ice)
    subscriber.on_ice_candidate(sub_ice)
    await publisher.connect()
    await subscriber.connect()
    await publisher.publish(audio=True, video=True)
    exchange_id = await subscriber.subscribe(publisher.participant_id or "")
    # a candidate sent before the offer reaches the subscriber is held by the server
    await subscriber.send_ice_candidate(exchange_id, "cand-sub", sdp_m_line_index=0)

    (request,) = await requests.wait_for(1)
    assert (request.exchange_id, request.subscriber_id) == (exchange_id, subscriber.participant_id)
    (got_offer,) = await offers.wait_for(1)
    assert (got_offer.sdp, got_offer.from_) == ("v=0 offer", publisher.participant_id)
    (got_answer,) = await answers.wait_for(1)
    assert (got_answer.sdp, got_answer.from_) == ("v=0 answer", subscriber.participant_id)
    (ice,) = await sub_ice.wait_for(1)
    assert isinstance(ice, IceCandidateNotificationParams)
    assert (ice.candidate, ice.sdp_mid) == ("cand-pub", "0")
    (ice,) = await pub_ice.wait_for(1)
    assert (ice.candidate, ice.sdp_m_line_index, ice.exchange_id) == ("cand-sub", 0, exchange_id)
    assert subscriber.listener_failures == publisher.listener_failures == 0


async def test_chat_to_everyone_and_in_private(make_session: SessionFactory) -> None:
    alice, bob, carol = make_session("alice"), make_session("bob"), make_session("carol")
    bob_inbox, carol_inbox = Recorder(), Recorder()
    bob.on_message(bob_inbox)
    carol.on_message(carol_inbox)
    for session in (alice, bob, carol):
        await session.connect()
    await alice.send_message("hello all")
    await alice.send_message("psst", to=[bob.participant_id or ""])
    await alice.send_message("last")
    texts = [(m.text, m.private) for m in await bob_inbox.wait_for(3)]
    assert texts == [("hello all", False), ("psst", True), ("last", False)]
    carol_texts = [m.text for m in await carol_inbox.wait_for(2)]
    assert carol_texts == ["hello all", "last"]
    assert all(isinstance(m, MessageReceivedParams) for m in bob_inbox.items)
    assert all(m.from_ == alice.participant_id for m in bob_inbox.items)


async def test_sync_data_reaches_followers_and_state(make_session: SessionFactory) -> None:
    leader = make_session("leader", token=token("room", roles=["synchronizer"]))
    follower = make_session("follower")
    updates = Recorder()
    follower.on_sync_data(updates)
    await leader.connect()
    await follower.connect()
    await leader.send_sync_data(12.5, True, rate=1.5, media_id="movie")
    (update,) = await updates.wait_for(1)
    assert isinstance(update, SyncDataParams)
    assert (update.position, update.playing, update.rate, update.media_id) == (
        12.5,
        True,
        1.5,
        "movie",
    )
    assert update.from_ == leader.participant_id
    assert follower.sync_state is not None and follower.sync_state.position == 12.5
    state = await follower.get_state()
    assert state.session_id == "room"
    assert "leader" in {p.name for p in state.participants}
    assert state.sync_state is not None and state.sync_state.media_id == "movie"
    late = make_session("late")
    await late.connect()
    assert late.sync_state is not None and late.sync_state.position == 12.5


async def test_failed_connect_leaves_session_idle_and_retryable(
    make_session: SessionFactory,
) -> None:
    first = make_session("same")
    await first.connect()
    second = make_session("same")
    with pytest.raises(UserError) as info:
        await second.connect()
    assert info.value.code == 104
    assert second.state is SessionState.IDLE
    await first.close()
    await second.connect()
    assert second.state is SessionState.JOINED


async def test_many_concurrent_requests_are_matched_by_id(make_session: SessionFactory) -> None:
    session = make_session()
    await session.connect()
    times = await asyncio.gather(*(session.ping() for _ in range(50)))
    assert len(times) == 50


async def test_viewer_joins_a_full_room(
    server: SignalingServer, make_session: SessionFactory
) -> None:
    for i in range(3):
        await make_session(f"full-{i}").connect()
    viewer = make_session("viewer", participant_type="viewer")
    await viewer.connect()
    assert len(viewer.participants) == 3
