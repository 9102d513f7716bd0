"""``retry_first_connect``: a bot that starts before its server (real server, fixed free port)."""

from __future__ import annotations

import asyncio

import pytest

from roomsignal import ReconnectPolicy, Session, SessionErrorException
from roomsignal.events import Reconnecting
from roomsignal.server import SignalingServer

from .conftest import SECRET, Recorder, free_port, token

QUICK = ReconnectPolicy(max_attempts=100, initial_delay=0.02, max_delay=0.1, jitter=False)


async def test_the_first_connect_retries_until_a_late_server_starts() -> None:
    port = free_port()
    session = Session(
        f"ws://127.0.0.1:{port}",
        token=token(),
        name="early-bot",
        reconnect=QUICK,
        retry_first_connect=True,
        strict_listeners=True,
    )
    retries = Recorder()
    session.on_reconnecting(retries)
    connecting = asyncio.ensure_future(session.connect())
    try:
        (first, *_) = await retries.wait_for(2)  # it failed twice: no server yet
        assert isinstance(first, Reconnecting) and first.attempt == 1 and first.code is None
        assert "cannot connect" in first.reason
        assert not connecting.done()
        async with SignalingServer(secret=SECRET, port=port):
            await asyncio.wait_for(connecting, 10)
            assert session.participant_id
            assert session.local_participant.name == "early-bot"
            await session.close()
    finally:
        connecting.cancel()
        await session.close()


async def test_without_the_flag_the_first_connect_fails_at_once_with_901() -> None:
    port = free_port()
    session = Session(f"ws://127.0.0.1:{port}", token=token(), name="b", reconnect=QUICK)
    retries = Recorder()
    session.on_reconnecting(retries)
    with pytest.raises(SessionErrorException) as caught:
        await session.connect()
    assert caught.value.code == 901 and retries.items == []
    await session.close()


async def test_the_retries_end_in_901_once_the_policy_is_spent() -> None:
    port = free_port()
    policy = ReconnectPolicy(max_attempts=3, initial_delay=0.01, jitter=False)
    session = Session(
        f"ws://127.0.0.1:{port}",
        token=token(),
        name="b",
        reconnect=policy,
        retry_first_connect=True,
    )
    retries = Recorder()
    session.on_reconnecting(retries)
    with pytest.raises(SessionErrorException) as caught:
        await session.connect()
    assert caught.value.code == 901
    assert [r.attempt for r in retries.items] == [1, 2, 3]
    await session.close()
