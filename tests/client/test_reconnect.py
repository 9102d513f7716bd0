"""Reconnection: resume without loss or duplicates, refused resumes, final closes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from roomsignal import ErrorCode, ReconnectPolicy, SessionState, SessionStateError
from roomsignal.protocol import MessageReceivedParams
from roomsignal.server import SignalingServer

from .conftest import SECRET, Proxy, Recorder, SessionFactory, token


async def test_cut_mid_stream_loses_and_duplicates_nothing(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    """A real TCP cut while 400 messages flow: each arrives once, in order."""
    listener = make_session("listener", url=proxy.url)
    talker = make_session("talker")
    inbox = Recorder()
    reconnected = Recorder()
    listener.on_reconnected(reconnected)

    @listener.on_message
    def receive(message: MessageReceivedParams) -> None:
        inbox(message.text)
        if len(inbox.items) == 100:
            proxy.cut()  # mid-stream, from inside the dispatch path

    await listener.connect()
    await talker.connect()
    for i in range(400):
        await talker.send_message(f"m{i}")
    await inbox.wait_for(400)
    (event,) = await reconnected.wait_for(1)
    assert event.resumed and not event.state_reset
    assert inbox.items == [f"m{i}" for i in range(400)]
    await talker.close()
    await listener.close()
    assert inbox.items == [f"m{i}" for i in range(400)]  # nothing more came
    assert proxy.connections >= 2


async def test_connection_drop_scenario_mid_error_burst(make_session: SessionFactory) -> None:
    """simulateScenario connectionDrop after a burst: the burst arrives exactly once."""
    session = make_session()
    seen = Recorder()
    reconnected = Recorder()
    session.on_session_error(seen)
    session.on_reconnected(reconnected)
    await session.connect()
    await session.simulate_scenario("sessionErrors", code=303, count=300)
    # the server drops the connection with no response: the call is sent again
    # after the resume and answered then (from the server's cache: one drop)
    await session.simulate_scenario("connectionDrop")
    (event,) = await reconnected.wait_for(1)
    assert event.resumed and event.resent == 1
    await session.simulate_scenario("sessionErrors", code=206, count=1)
    errors = await seen.wait_for(301)
    assert [e.code for e in errors] == [303] * 300 + [206]
    assert session.last_seq == 301


async def test_cut_during_an_error_burst_counts_exactly(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    """The proxy cuts the TCP stream mid-frame while a burst of 2000 errors flows."""
    session = make_session(url=proxy.url)
    seen, reconnected = Recorder(), Recorder()
    session.on_session_error(seen)
    session.on_reconnected(reconnected)
    await session.connect()
    proxy.cut_after = proxy.forwarded + 40_000  # about a third of the burst
    await session.simulate_scenario("sessionErrors", code=303, count=2000)
    (event,) = await reconnected.wait_for(1)
    assert event.resumed and event.replayed > 0
    errors = await seen.wait_for(2000, timeout=20)
    await session.simulate_scenario("sessionErrors", code=206, count=1)
    errors = await seen.wait_for(2001)
    assert [e.code for e in errors] == [303] * 2000 + [206]
    assert session.last_seq == 2001


async def test_requests_wait_for_the_rejoin(proxy: Proxy, make_session: SessionFactory) -> None:
    session = make_session(url=proxy.url)
    reconnecting = Recorder()
    session.on_reconnecting(reconnecting)
    await session.connect()
    proxy.refuse = True
    proxy.cut()
    await reconnecting.wait_for(1)
    ping = asyncio.ensure_future(session.ping())
    await reconnecting.wait_for(3)
    assert not ping.done()
    proxy.refuse = False
    assert isinstance(await asyncio.wait_for(ping, 5), float)


async def test_refused_resume_joins_afresh(make_session: SessionFactory) -> None:
    async with (
        SignalingServer(secret=SECRET, resume_window=0.05) as short,
        Proxy(short.port) as proxy,
    ):
        session = make_session("bot", url=proxy.url)
        witness = make_session("witness", url=short.url)
        left, reconnected, errors = Recorder(), Recorder(), Recorder()
        witness.on_participant_left(left)
        session.on_reconnected(reconnected)
        session.on_session_error(errors)
        await session.connect()
        await witness.connect()
        old_id = session.participant_id
        assert session.resume_window == 0.05  # from the join result's resumeWindow
        proxy.pause_upstream()
        in_flight = asyncio.ensure_future(session.send_message("lost"))
        await asyncio.wait_for(proxy.holding(), 5)
        proxy.refuse = True
        proxy.cut()
        proxy.resume()
        (gone,) = await left.wait_for(1)  # the resume window has passed
        assert (gone.participant_id, gone.reason) == (old_id, "disconnected")
        assert not in_flight.done()  # it waits for the resume
        proxy.refuse = False
        (event,) = await reconnected.wait_for(1)
        assert not event.resumed and event.state_reset and event.resent == 0
        # After a state reset nothing is sent again: the caller hears 901.
        with pytest.raises(SessionStateError) as info:
            await in_flight
        assert info.value.code == ErrorCode.GENERIC_CONNECTION_ERROR
        assert info.value.error.data["closeCode"] is None  # how the connection ended
        assert "state reset" in info.value.error.message
        assert session.participant_id == event.participant_id != old_id
        assert ErrorCode.USER_NOT_AUTHORIZED_ERROR_CODE in [e.code for e in errors.items]
        assert session.state is SessionState.JOINED
        assert "witness" in {p.name for p in session.participants.values()}
        await session.close()
        await witness.close()


async def test_replaced_connection_is_final(make_session: SessionFactory) -> None:
    session = make_session()
    errors, disconnected = Recorder(), Recorder()
    session.on_session_error(errors)
    session.on_disconnected(disconnected)
    await session.connect()
    secret = session._participant_secret  # another device takes the seat with it
    async with connect(session.url, subprotocols=["roomsignal.v1"]) as thief:  # type: ignore[list-item]
        await thief.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "join",
                    "params": {
                        "token": token("room"),
                        "name": "bot",
                        "oldParticipantSecret": secret,
                        "lastSeq": session.last_seq,
                    },
                }
            )
        )
        reply = json.loads(await thief.recv())
        assert reply["result"]["resumed"] is True
        error = (await errors.wait_for(1))[0]
        assert error.code == ErrorCode.CONNECTION_REPLACED_ERROR_CODE
        assert error.source == "client"
        (event,) = await disconnected.wait_for(1)
        assert event.code == 4001 and not event.will_reconnect
        assert session.state is SessionState.CLOSED


async def test_no_reconnect_policy_reports_903(proxy: Proxy, make_session: SessionFactory) -> None:
    session = make_session(url=proxy.url, reconnect=None)
    errors = Recorder()
    session.on_session_error(errors)
    await session.connect()
    proxy.cut()
    (error,) = await errors.wait_for(1)
    assert error.code == ErrorCode.CONNECTION_LOST_ERROR_CODE
    assert session.state is SessionState.CLOSED


async def test_gives_up_after_max_attempts(proxy: Proxy, make_session: SessionFactory) -> None:
    policy = ReconnectPolicy(
        max_attempts=3, initial_delay=0.001, max_delay=0.002, outlast_seat=False
    )
    session = make_session(url=proxy.url, reconnect=policy)
    errors, attempts, disconnected = Recorder(), Recorder(), Recorder()
    session.on_session_error(errors)
    session.on_reconnecting(attempts)
    session.on_disconnected(disconnected)
    await session.connect()
    proxy.refuse = True
    proxy.cut()
    (error,) = await errors.wait_for(1)
    assert error.code == ErrorCode.CONNECTION_LOST_ERROR_CODE
    assert [a.attempt for a in attempts.items] == [1, 2, 3]
    # the app is told twice: reconnecting will be tried, then it was given up
    assert [e.will_reconnect for e in await disconnected.wait_for(2)] == [True, False]
    assert session.state is SessionState.CLOSED


async def test_session_closed_by_moderator_is_final(make_session: SessionFactory) -> None:
    mod = make_session("mod", token=token("room", roles=["moderator"]))
    member = make_session("member")
    closed, reconnecting = Recorder(), Recorder()
    member.on_session_closed(closed)
    member.on_reconnecting(reconnecting)
    await mod.connect()
    await member.connect()
    await mod.close_session("movie over")
    (event,) = await closed.wait_for(1)
    assert event.reason == "movie over"
    disconnected = Recorder()
    member.on_disconnected(disconnected)
    (event,) = await disconnected.wait_for(1)
    assert not event.will_reconnect
    assert member.state is SessionState.CLOSED
    assert reconnecting.items == []


def test_the_default_policy_outlasts_the_seat() -> None:
    """Past max_attempts, it goes on while the server keeps the seat (resumeWindow)."""
    policy = ReconnectPolicy()
    assert not policy.gives_up(9, 100.0, 30.0)  # attempts left
    assert not policy.gives_up(10, 12.0, 30.0)  # the seat still waits: go on
    assert policy.gives_up(10, 30.0 + policy.max_delay, 30.0)
    assert policy.gives_up(10, 0.0, None)  # a server that does not say
    assert policy.gives_up(10, 0.0, 0.0)  # no seat is kept at all
    assert ReconnectPolicy(outlast_seat=False).gives_up(10, 0.0, 30.0)
    # Attempts past max_attempts keep a bounded delay (no overflow at attempt 2000).
    assert policy.delay(2000) <= policy.max_delay


def test_backoff_policy_bounds() -> None:
    policy = ReconnectPolicy(initial_delay=0.1, max_delay=5.0, jitter=False)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.8]
    assert policy.delay(20) == 5.0
    jittered = ReconnectPolicy()
    assert all(0 <= jittered.delay(n) <= min(5.0, 0.1 * 2 ** (n - 1)) for n in range(1, 30))


async def test_expired_token_is_refreshed_before_a_reconnect(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    fresh: list[str] = []

    async def provider() -> str:
        fresh.append(token("room"))
        return fresh[-1]

    session = make_session(url=proxy.url, token_provider=provider)
    reconnected = Recorder()
    session.on_reconnected(reconnected)
    await session.connect()
    assert fresh == []
    session._token = token("room", ttl=-5)  # the token expires while connected
    proxy.cut()
    (event,) = await reconnected.wait_for(1)
    assert event.resumed
    assert len(fresh) == 1


async def test_keepalive_notices_a_silent_server(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    session = make_session(url=proxy.url, ping_interval=0.05, ping_timeout=0.1, open_timeout=0.2)
    disconnected, reconnected = Recorder(), Recorder()
    session.on_disconnected(disconnected)
    session.on_reconnected(reconnected)
    await session.connect()
    proxy.pause()  # no close, no reset: the peer just goes silent
    (event,) = await disconnected.wait_for(1)
    assert event.will_reconnect
    proxy.resume()
    (back,) = await reconnected.wait_for(1)
    assert back.resumed
    assert isinstance(await session.ping(), float)


async def test_failing_token_provider_ends_the_session_cleanly(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    async def provider() -> str:
        raise RuntimeError("vault unreachable")

    session = make_session(url=proxy.url, token_provider=provider)
    errors = Recorder()
    session.on_session_error(errors)
    await session.connect()
    session._token = token("room", ttl=-5)
    proxy.cut()
    got = await errors.wait_for(2)
    assert [e.code for e in got] == [ErrorCode.TOKEN_EXPIRED, ErrorCode.CONNECTION_LOST_ERROR_CODE]
    assert "vault unreachable" in got[0].message
    assert session.state is SessionState.CLOSED


async def test_a_replay_that_kills_every_connection_ends_in_903(
    make_session: SessionFactory,
) -> None:
    """A frame over the client's max_size sits in the replay: no endless resume loop."""
    policy = ReconnectPolicy(
        max_attempts=4, initial_delay=0.001, max_delay=0.002, outlast_seat=False
    )
    async with SignalingServer(
        secret=SECRET, max_frame_bytes=4 << 20, max_text_bytes=4 << 20, max_send_queue_bytes=8 << 20
    ) as big:
        victim = make_session("victim", url=big.url, max_size=1 << 20, reconnect=policy)
        talker = make_session("talker", url=big.url)
        errors, attempts, disconnected = Recorder(), Recorder(), Recorder()
        victim.on_session_error(errors)
        victim.on_reconnecting(attempts)
        victim.on_disconnected(disconnected)
        await victim.connect()
        await talker.connect()
        await talker.send_message("x" * (1_500_000))
        async with asyncio.timeout(10):
            while not any(e.code == ErrorCode.CONNECTION_LOST_ERROR_CODE for e in errors.items):
                await errors.wait_for(len(errors.items) + 1)
        assert victim.state is SessionState.CLOSED
        assert len(attempts.items) == 4
        assert disconnected.items[0].code == 1009
        await talker.close()
        await victim.close()


async def test_replay_gap_joins_afresh(make_session: SessionFactory) -> None:
    async with SignalingServer(secret=SECRET, replay_buffer=4) as small, Proxy(small.port) as proxy:
        session = make_session("bot", url=proxy.url)
        talker = make_session("talker", url=small.url)
        errors, reconnected, attempts = Recorder(), Recorder(), Recorder()
        session.on_session_error(errors)
        session.on_reconnected(reconnected)
        session.on_reconnecting(attempts)
        await session.connect()
        await talker.connect()
        proxy.refuse = True
        proxy.cut()
        await attempts.wait_for(1)
        for i in range(10):  # more than the replay buffer holds
            await talker.send_message(f"m{i}")
        proxy.refuse = False
        (event,) = await reconnected.wait_for(1)
        assert event.state_reset and not event.resumed
        refused = [e for e in errors.items if e.code == ErrorCode.USER_NOT_AUTHORIZED_ERROR_CODE]
        assert refused and refused[0].data.get("reason") == "replayGap"
        assert session.state is SessionState.JOINED
        inbox = Recorder()
        session.on_message(inbox)
        await talker.send_message("after")
        assert [m.text for m in await inbox.wait_for(1)] == ["after"]


async def test_an_answer_lost_in_a_cut_is_not_a_second_delivery(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    """A real cut between the request and its answer: the server handled it; the
    client sends it again after the resume (same id) and gets the kept answer."""
    sender = make_session("sender", url=proxy.url)
    receiver = make_session("receiver")
    inbox, reconnected = Recorder(), Recorder()
    receiver.on_message(lambda m: inbox(m.text))
    sender.on_reconnected(reconnected)
    await receiver.connect()
    await sender.connect()
    proxy.pause_downstream()  # the answer will not reach the sender
    sending = asyncio.ensure_future(sender.send_message("exactly once"))
    await inbox.wait_for(1)  # the server handled it
    await asyncio.wait_for(proxy.holding(), 5)  # and its answer is held in the proxy
    assert not sending.done()
    proxy.cut()
    proxy.resume()
    await asyncio.wait_for(sending, 5)  # the awaited call simply completes
    (event,) = await reconnected.wait_for(1)
    assert event.resumed and event.resent == 1
    await receiver.ping()  # a round trip behind anything the server still sends it
    await sender.send_message("after")
    await inbox.wait_for(2)
    assert inbox.items == ["exactly once", "after"]


async def test_a_request_cut_before_the_server_is_delivered_after_the_resume(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    """A real cut between the send and the server: it never arrived; sent again
    after the resume it is handled as new, once."""
    sender = make_session("sender", url=proxy.url)
    receiver = make_session("receiver")
    inbox, reconnected = Recorder(), Recorder()
    receiver.on_message(lambda m: inbox(m.text))
    sender.on_reconnected(reconnected)
    await receiver.connect()
    await sender.connect()
    proxy.pause_upstream()  # nothing more reaches the server
    calls = [
        asyncio.ensure_future(sender.send_message("one")),
        asyncio.ensure_future(sender.publish(audio=True, video=False)),
        asyncio.ensure_future(sender.send_message("two")),
    ]
    await asyncio.wait_for(proxy.holding(), 5)
    proxy.cut()
    proxy.resume()
    results = await asyncio.wait_for(asyncio.gather(*calls), 5)
    assert results[1].startswith("st_")  # publish's answer came through the re-send
    (event,) = await reconnected.wait_for(1)
    assert event.resumed and event.resent == 3
    await sender.send_message("after")
    await inbox.wait_for(3)
    assert inbox.items == ["one", "two", "after"]  # once each, in order
    assert receiver.participants[sender.participant_id].streams is not None


async def test_pipelined_requests_survive_repeated_cuts_exactly_once_in_order(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    """600 chat messages, 20 in flight at a time, the TCP connection cut every 60
    deliveries: each arrives once, in the order sent, and every call completes."""
    sender = make_session("sender", url=proxy.url)
    receiver = make_session("receiver")
    inbox, reconnected = Recorder(), Recorder()
    sender.on_reconnected(reconnected)

    @receiver.on_message
    def on_message(message: MessageReceivedParams) -> None:
        inbox(message.text)
        if len(inbox.items) % 60 == 30:
            proxy.cut()  # mid-batch: some sent, some answered, some in the air

    await receiver.connect()
    await sender.connect()
    for batch in range(30):
        texts = [f"m{batch * 20 + i}" for i in range(20)]
        await asyncio.wait_for(asyncio.gather(*(sender.send_message(t) for t in texts)), 10)
    await sender.send_message("end")
    expected = [f"m{i}" for i in range(600)] + ["end"]
    assert await inbox.wait_for(len(expected), timeout=10) == expected
    assert len(reconnected.items) >= 5
    assert all(event.resumed for event in reconnected.items)


async def _outage(proxy: Proxy, reconnecting: Recorder, longer_than: float) -> None:
    """Refuse new connections until ``longer_than`` seconds of reconnecting have passed."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    proxy.refuse = True
    proxy.cut()
    proxy.resume()
    seen = 0
    while loop.time() - start < longer_than:  # each attempt is an event: no fixed sleep
        seen += 1
        await reconnecting.wait_for(seen, timeout=5)
    proxy.refuse = False


@pytest.mark.parametrize("lost", ["request", "answer"])
async def test_a_call_across_an_outage_longer_than_its_timeout_completes_once(
    proxy: Proxy, make_session: SessionFactory, lost: str
) -> None:
    """request_timeout counts only time connected: an awaited send_message whose
    request (or answer) a cut lost, across an outage of 2.5 request_timeouts
    within the resume window, completes after the resume, delivered once; so
    does a call made while reconnecting."""
    sender = make_session("sender", url=proxy.url, request_timeout=1.0)
    receiver = make_session("receiver")
    inbox, reconnected, reconnecting, errors = Recorder(), Recorder(), Recorder(), Recorder()
    receiver.on_message(lambda m: inbox(m.text))
    sender.on_reconnected(reconnected)
    sender.on_reconnecting(reconnecting)
    sender.on_session_error(errors)
    await receiver.connect()
    await sender.connect()
    if lost == "answer":
        proxy.pause_downstream()
        sending = asyncio.ensure_future(sender.send_message("exactly once"))
        await inbox.wait_for(1)  # the server handled it; its answer is held
    else:
        proxy.pause_upstream()
        sending = asyncio.ensure_future(sender.send_message("exactly once"))
    await asyncio.wait_for(proxy.holding(), 5)
    outage = asyncio.ensure_future(_outage(proxy, reconnecting, 2.5))
    await reconnecting.wait_for(1)
    later = asyncio.ensure_future(sender.send_message("sent while reconnecting"))
    await outage
    await asyncio.wait_for(sending, 5)  # no 902: the call simply completes
    await asyncio.wait_for(later, 5)
    (event,) = await reconnected.wait_for(1)
    assert event.resumed and event.resent == 1
    await sender.send_message("after")
    await inbox.wait_for(3)
    assert inbox.items == ["exactly once", "sent while reconnecting", "after"]
    assert errors.items == []  # no 902, nothing else
    # and the timeout still holds once connected: an answer that never comes is 902
    proxy.pause_downstream()
    with pytest.raises(SessionStateError) as info:
        await sender.ping()
    assert info.value.code == ErrorCode.REQUEST_TIMEOUT_ERROR_CODE
    proxy.resume()


async def test_a_state_reset_after_an_outage_longer_than_the_timeout_fails_calls_with_901(
    make_session: SessionFactory,
) -> None:
    """The seat expired during an outage of 2.5 request_timeouts: the call in
    flight fails with 901 "state reset" (not 902), the session joins afresh."""
    async with (
        SignalingServer(secret=SECRET, resume_window=0.2) as short,
        Proxy(short.port) as proxy,
    ):
        session = make_session("bot", url=proxy.url, request_timeout=1.0)
        reconnecting, reconnected, errors = Recorder(), Recorder(), Recorder()
        session.on_reconnecting(reconnecting)
        session.on_reconnected(reconnected)
        session.on_session_error(errors)
        await session.connect()
        proxy.pause_upstream()
        in_flight = asyncio.ensure_future(session.send_message("lost"))
        await asyncio.wait_for(proxy.holding(), 5)
        await _outage(proxy, reconnecting, 2.5)
        with pytest.raises(SessionStateError) as info:
            await asyncio.wait_for(in_flight, 5)
        assert info.value.code == ErrorCode.GENERIC_CONNECTION_ERROR
        assert "state reset" in info.value.error.message
        (event,) = await reconnected.wait_for(1)
        assert event.state_reset
        assert ErrorCode.REQUEST_TIMEOUT_ERROR_CODE not in [e.code for e in errors.items]
        await session.close()


async def test_a_session_that_gives_up_fails_calls_with_its_end(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    """Past request_timeout while reconnecting, a call in flight and one waiting
    for the rejoin fail with the session's end (903) once it gives up, not 902."""
    policy = ReconnectPolicy(
        max_attempts=30, initial_delay=0.05, max_delay=0.1, jitter=False, outlast_seat=False
    )
    session = make_session(url=proxy.url, reconnect=policy, request_timeout=0.5)
    reconnecting, errors = Recorder(), Recorder()
    session.on_reconnecting(reconnecting)
    session.on_session_error(errors)
    await session.connect()
    proxy.pause_upstream()
    in_flight = asyncio.ensure_future(session.send_message("never"))
    await asyncio.wait_for(proxy.holding(), 5)
    proxy.refuse = True
    proxy.cut()
    proxy.resume()
    await reconnecting.wait_for(1)
    waiting = asyncio.ensure_future(session.send_message("neither"))
    for call in (in_flight, waiting):
        with pytest.raises(SessionStateError) as info:
            await asyncio.wait_for(call, 10)
        assert info.value.code == ErrorCode.CONNECTION_LOST_ERROR_CODE
        assert "gave up after 30 reconnection attempts" in info.value.error.message
    assert len(reconnecting.items) == 30  # about 2.9 s: far past request_timeout
    assert ErrorCode.REQUEST_TIMEOUT_ERROR_CODE not in [e.code for e in errors.items]
    assert session.state is SessionState.CLOSED


@pytest.mark.parametrize("lost", ["request", "answer"])
async def test_each_kind_of_request_survives_a_cut_exactly_once(
    proxy: Proxy, make_session: SessionFactory, lost: str
) -> None:
    """send_sync_data, publish, subscribe, unpublish and get_state in flight across
    a real cut (the request lost, or only its answer): each call completes and
    the others hear its effect once."""
    sender = make_session("sender", url=proxy.url, token=token("room", roles=["synchronizer"]))
    other = make_session("other")
    heard: list[str] = []
    notified = asyncio.Event()

    def note(kind: str) -> None:
        heard.append(kind)
        notified.set()

    other.on_sync_data(lambda d: note(f"sync {d.position}"))
    other.on_stream_published(lambda e: note("published"))
    other.on_stream_unpublished(lambda e: note("unpublished"))
    other.on_subscribe_request(lambda e: note("subscribe request"))
    reconnected = Recorder()
    sender.on_reconnected(reconnected)
    await other.connect()
    await sender.connect()
    await other.publish(audio=True, video=False)

    async def across_a_cut(*calls: Any, effects: int) -> list[Any]:
        """Start ``calls`` with the proxy paused one way, cut, and gather them."""
        if lost == "answer":
            proxy.pause_downstream()
        else:
            proxy.pause_upstream()
        tasks = [asyncio.ensure_future(call) for call in calls]
        if lost == "answer":  # the server handled them; their answers are held
            while len(heard) < effects:
                notified.clear()
                await asyncio.wait_for(notified.wait(), 5)
        await asyncio.wait_for(proxy.holding(), 5)
        proxy.cut()
        proxy.resume()
        return await asyncio.wait_for(asyncio.gather(*tasks), 5)

    stream, state, _ = await across_a_cut(
        sender.publish(audio=True, video=False),
        sender.get_state(),
        sender.send_sync_data(1.5, playing=True),
        effects=2,
    )
    assert stream.startswith("st_") and sender.participant_id in {
        p.participant_id for p in state.participants
    }
    (exchange,) = await across_a_cut(sender.subscribe(other.participant_id), effects=3)
    assert exchange
    await across_a_cut(sender.unpublish(), effects=4)
    await other.ping()  # a round trip behind anything the server still sends it
    await sender.send_sync_data(2.5, playing=True)
    while len(heard) < 5:
        notified.clear()
        await asyncio.wait_for(notified.wait(), 5)
    assert sorted(heard[:2]) == ["published", "sync 1.5"]
    assert heard[2:] == ["subscribe request", "unpublished", "sync 2.5"]  # once each
    assert [e.resumed for e in reconnected.items] == [True, True, True]
    assert [e.resent for e in reconnected.items] == [3, 1, 1]


async def test_without_reconnection_a_cut_fails_calls_in_flight_with_903(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    """reconnect=None: the cut is the session's end; the call in flight fails with it."""
    session = make_session(url=proxy.url, reconnect=None)
    await session.connect()
    proxy.pause_upstream()
    in_flight = asyncio.ensure_future(session.send_message("lost"))
    await asyncio.wait_for(proxy.holding(), 5)
    proxy.cut()
    with pytest.raises(SessionStateError) as info:
        await asyncio.wait_for(in_flight, 5)
    assert info.value.code == ErrorCode.CONNECTION_LOST_ERROR_CODE
    assert info.value.error.data["closeCode"] is None  # how the connection ended
    assert session.state is SessionState.CLOSED
