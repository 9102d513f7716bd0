"""Failover (docs/client.md): several URLs or a provider, and a policy that outlasts the seat.

Real servers on loopback: one closed as if it crashed (``close(graceful=False)``)
and started again on its port, or two servers of which the first is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from roomsignal import (
    ErrorCode,
    ReconnectPolicy,
    Session,
    SessionError,
    SessionErrorException,
    SessionState,
)
from roomsignal.server import SignalingServer

from .conftest import SECRET, Proxy, Recorder, SessionFactory, free_port

QUICK = ReconnectPolicy(max_attempts=3, initial_delay=0.01, max_delay=0.05)


def test_bad_url_lists_are_refused_at_once() -> None:
    for bad in ([], ["http://127.0.0.1:1"], ["ws://127.0.0.1:1", "nope"], 42):
        with pytest.raises(ValueError):
            Session(bad, token="t", name="n")  # type: ignore[arg-type]
    session = Session(("ws://127.0.0.1:1", "ws://127.0.0.1:2"), token="t", name="n")
    assert session.url == "ws://127.0.0.1:1"  # the first, until a dial says otherwise


async def test_connect_goes_to_the_first_url_that_answers(
    server: SignalingServer, make_session: SessionFactory
) -> None:
    dead = f"ws://127.0.0.1:{free_port()}"
    session = make_session("bot", url=[dead, server.url])
    await session.connect()
    assert session.url == server.url
    assert isinstance(await session.ping(), float)


async def test_none_answering_says_which_failed(make_session: SessionFactory) -> None:
    urls = [f"ws://127.0.0.1:{free_port()}" for _ in range(2)]
    session = make_session("bot", url=urls)
    errors = Recorder()
    session.on_session_error(errors)
    with pytest.raises(SessionErrorException) as info:
        await session.connect()
    assert "any of 2 URLs" in str(info.value)
    assert all(url in str(info.value) for url in urls)
    (error,) = await errors.wait_for(1)
    assert error.code == ErrorCode.GENERIC_CONNECTION_ERROR
    assert session.state is SessionState.IDLE


async def test_a_drop_resumes_through_the_next_live_url(make_session: SessionFactory) -> None:
    """Two servers: the one we sat on dies; the next takes us (a fresh seat, said so)."""
    port = free_port()
    first = SignalingServer(port=port, secret=SECRET, resume_window=5.0)
    async with SignalingServer(secret=SECRET, resume_window=5.0) as second:
        await first.start()
        session = make_session("bot", url=[first.url, second.url])
        reconnected, errors = Recorder(), Recorder()
        session.on_reconnected(reconnected)
        session.on_session_error(errors)
        await session.connect()
        assert session.url == first.url
        await first.close(graceful=False)  # a crash: no close frame
        (event,) = await reconnected.wait_for(1)
        assert event.url == second.url == session.url
        # The other server never knew the seat: its 106 is the expected path to a
        # fresh seat, flagged so; a state reset, not the end.
        assert event.state_reset and not event.resumed
        refused = [e for e in errors.items if e.code == ErrorCode.USER_NOT_AUTHORIZED_ERROR_CODE]
        assert refused and all(e.recovering for e in refused)
        assert session.state is SessionState.JOINED


async def test_the_default_policy_outlasts_max_attempts_while_the_seat_waits(
    server: SignalingServer, proxy: Proxy, make_session: SessionFactory
) -> None:
    """Unreachable longer than max_attempts last, back within the resume window: a resume."""
    session = make_session("bot", url=proxy.url, reconnect=QUICK)
    attempts, reconnected = Recorder(), Recorder()
    session.on_reconnecting(attempts)
    session.on_reconnected(reconnected)
    await session.connect()
    assert session.resume_window == server.config.resume_window
    proxy.refuse = True
    proxy.cut()
    await attempts.wait_for(QUICK.max_attempts + 3)  # past max_attempts: still trying
    assert session.state is SessionState.RECONNECTING
    proxy.refuse = False
    (event,) = await reconnected.wait_for(1)
    assert event.resumed and event.attempts > QUICK.max_attempts


async def test_a_resume_refused_on_the_last_attempt_joins_afresh(
    make_session: SessionFactory,
) -> None:
    """The seat expired before the only attempt: its 106 is a state reset, not 903."""
    once = ReconnectPolicy(max_attempts=1, initial_delay=0.5, jitter=False, outlast_seat=False)
    async with (
        SignalingServer(secret=SECRET, resume_window=0.05) as short,
        Proxy(short.port) as proxy,
    ):
        session = make_session("bot", url=proxy.url, reconnect=once)
        reconnected, errors = Recorder(), Recorder()
        session.on_reconnected(reconnected)
        session.on_session_error(errors)
        await session.connect()
        proxy.cut()  # the seat expires (0.05 s) before the attempt (0.5 s)
        (event,) = await reconnected.wait_for(1)
        assert event.state_reset and event.attempts == 1
        assert session.state is SessionState.JOINED
        (refused,) = [e for e in errors.items if e.code == 106]
        assert refused.recovering  # reported, and flagged as the expected way back
        assert not any(e.code == ErrorCode.CONNECTION_LOST_ERROR_CODE for e in errors.items)


async def test_a_106_that_ends_the_session_is_a_real_refusal(
    make_session: SessionFactory,
) -> None:
    """With ``rejoin_on_reset=False`` a refused resume is the end: its 106 is not
    flagged recovering (nor the 903 that follows)."""
    stop = ReconnectPolicy(
        max_attempts=3, initial_delay=0.5, jitter=False, outlast_seat=False, rejoin_on_reset=False
    )
    async with (
        SignalingServer(secret=SECRET, resume_window=0.05) as short,
        Proxy(short.port) as proxy,
    ):
        session = make_session("bot", url=proxy.url, reconnect=stop)
        errors = Recorder()
        session.on_session_error(errors)
        await session.connect()
        proxy.cut()  # the seat expires (0.05 s) before the attempt (0.5 s)
        end = await asyncio.wait_for(session.wait_closed(), 10)
        assert end.error is not None and not end.error.recovering
        (refused,) = [e for e in errors.items if e.code == 106]
        assert not refused.recovering
        assert not any(e.recovering for e in errors.items)


async def test_a_server_restart_is_a_state_reset_with_a_recovering_106(
    make_session: SessionFactory,
) -> None:
    port = free_port()
    server = SignalingServer(port=port, secret=SECRET, resume_window=30.0)
    await server.start()
    try:
        session = make_session("bot", url=server.url, reconnect=QUICK)
        attempts, reconnected = Recorder(), Recorder()
        real_refusals: list[SessionError] = []
        session.on_reconnecting(attempts)
        session.on_reconnected(reconnected)

        @session.on_session_error
        def on_error(error: SessionError) -> None:  # what docs/client.md tells apps to do
            if not error.recovering and error.code == 106:
                real_refusals.append(error)

        await session.connect()
        await server.close(graceful=False)
        await attempts.wait_for(QUICK.max_attempts + 2)  # down past max_attempts
        await server.start()  # the same port, every seat forgotten
        (event,) = await reconnected.wait_for(1)
        assert event.state_reset and session.state is SessionState.JOINED
        assert real_refusals == []
    finally:
        await server.close()


async def test_a_provider_is_asked_at_each_attempt(
    server: SignalingServer, make_session: SessionFactory
) -> None:
    asked: list[int] = []
    dead = f"ws://127.0.0.1:{free_port()}"

    async def discover() -> Sequence[str]:
        asked.append(len(asked))
        if len(asked) == 1:
            raise OSError("discovery is down")  # an attempt that fails, not the end
        return [dead, server.url]

    session = make_session("bot", url=discover, retry_first_connect=True)
    assert session.url == ""  # nothing known before the provider is asked
    await session.connect()
    assert session.url == server.url and len(asked) == 2
    reconnected = Recorder()
    session.on_reconnected(reconnected)
    await session.simulate_scenario("connectionDrop")
    (event,) = await reconnected.wait_for(1)
    assert event.resumed and event.url == server.url and len(asked) == 3


async def test_a_provider_giving_bad_urls_fails_the_attempt_clearly(
    make_session: SessionFactory,
) -> None:
    async def discover() -> Sequence[str]:
        return ["http://not-a-websocket"]

    session = make_session("bot", url=discover)
    with pytest.raises(SessionErrorException) as info:
        await session.connect()
    assert "no URL to dial" in str(info.value) and "http://not-a-websocket" in str(info.value)


async def test_a_fresh_rejoin_refused_with_104_is_tried_again(
    make_session: SessionFactory,
) -> None:
    """After its seat expired the resume is refused (106) and the fresh join finds
    the name held (104, as by its own old seat not let go yet): tried again,
    flagged recovering, and joined once the name is free; never a bare 104."""
    async with (
        SignalingServer(secret=SECRET, resume_window=0.05) as short,
        Proxy(short.port) as proxy,
    ):
        session = make_session("bot", url=proxy.url)
        witness = make_session("witness", url=short.url)
        reconnected, errors, left = Recorder(), Recorder(), Recorder()
        session.on_reconnected(reconnected)
        session.on_session_error(errors)
        witness.on_participant_left(left)
        await session.connect()
        await witness.connect()
        proxy.refuse = True
        proxy.cut()
        await left.wait_for(1)  # the seat expired
        holder = make_session("bot", url=short.url, reconnect=None)
        async with holder:  # the name is held meanwhile
            proxy.refuse = False
            while not any(e.code == 104 for e in errors.items):
                await errors.wait_for(len(errors.items) + 1)
            assert session.state is SessionState.RECONNECTING
        (event,) = await reconnected.wait_for(1)
        assert event.state_reset and session.state is SessionState.JOINED
        held = [e for e in errors.items if e.code == ErrorCode.EXISTING_USER_IN_SESSION_ERROR_CODE]
        assert held and all(e.recovering for e in held)
