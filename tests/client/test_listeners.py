"""Listener contracts: sync and async, order, isolation, failures, re-entrancy."""

from __future__ import annotations

import asyncio
import logging

import pytest

from roomsignal import SessionError
from roomsignal.protocol import MessageReceivedParams

from .conftest import Recorder, SessionFactory


async def test_sync_and_async_listeners_see_every_error_in_order(
    make_session: SessionFactory,
) -> None:
    session = make_session()
    sync_seen: list[int] = []
    async_seen = Recorder()

    @session.on_session_error
    def sync_listener(error: SessionError) -> None:
        sync_seen.append(error.code)

    @session.on_session_error
    async def async_listener(error: SessionError) -> None:
        await asyncio.sleep(0)
        async_seen(error.code)

    assert sync_listener.__name__ == "sync_listener"  # the decorator returns fn unchanged
    await session.connect()
    for code in (201, 303, 206, 1100, 4242):
        await session.simulate_scenario("sessionErrors", code=code, count=20)
    await async_seen.wait_for(100)
    expected = [code for code in (201, 303, 206, 1100, 4242) for _ in range(20)]
    assert async_seen.items == expected
    await session.close()
    assert sync_seen == expected


async def test_slow_listener_stalls_neither_reader_nor_others(make_session: SessionFactory) -> None:
    session = make_session()
    release = asyncio.Event()
    slow_seen: list[SessionError] = []
    fast = Recorder()

    @session.on_session_error
    async def slow(error: SessionError) -> None:
        await release.wait()
        slow_seen.append(error)

    session.on_session_error(fast)
    await session.connect()
    await session.simulate_scenario("sessionErrors", code=303, count=50)
    await fast.wait_for(50)  # the fast one got everything while the slow one is blocked
    assert slow_seen == []
    assert isinstance(await session.ping(), float)  # the reader is not stalled either
    release.set()
    await session.close()  # queued events are still delivered within close_timeout
    assert len(slow_seen) == 50


async def test_failing_listener_is_logged_and_dispatch_goes_on(
    make_session: SessionFactory, caplog: pytest.LogCaptureFixture
) -> None:
    hook_calls: list[tuple[str, str]] = []
    session = make_session(strict_listeners=False)
    healthy = Recorder()

    @session.on_session_error
    def broken(error: SessionError) -> None:
        raise RuntimeError(f"boom {error.code}")

    session.on_session_error(healthy)

    @session.on_listener_error
    def hook(exc: BaseException, event: str, payload: object, fn: object) -> None:
        hook_calls.append((event, str(exc)))

    await session.connect()
    with caplog.at_level(logging.ERROR, logger="roomsignal.client"):
        await session.simulate_scenario("sessionErrors", code=201, count=3)
        await healthy.wait_for(3)
        await session.close()
    assert session.listener_failures == 3
    assert hook_calls == [("session_error", "boom 201")] * 3
    assert "boom 201" in caplog.text
    assert "broken" in caplog.text
    assert "Traceback" in caplog.text and 'raise RuntimeError(f"boom' in caplog.text


async def test_strict_mode_reraises_at_close(make_session: SessionFactory) -> None:
    session = make_session(strict_listeners=True)
    seen = Recorder()

    @session.on_session_error
    def broken(error: SessionError) -> None:
        seen(error)
        raise ValueError("listener bug")

    await session.connect()
    await session.simulate_scenario("sessionErrors", code=201, count=1)
    await seen.wait_for(1)
    with pytest.raises(ValueError, match="listener bug"):
        await session.close()


async def test_listener_may_await_session_methods(make_session: SessionFactory) -> None:
    alice, bob = make_session("alice"), make_session("bob")
    replies = Recorder()

    @bob.on_message
    async def echo(message: MessageReceivedParams) -> None:
        # a listener awaiting a request: answered by the reader, no deadlock
        await bob.ping()
        await bob.send_message(f"echo {message.text}", to=[message.from_])

    alice.on_message(replies)
    await alice.connect()
    await bob.connect()
    for i in range(5):
        await alice.send_message(f"m{i}")
    texts = [m.text for m in await replies.wait_for(5)]
    assert texts == [f"echo m{i}" for i in range(5)]


async def test_off_removes_a_listener(make_session: SessionFactory) -> None:
    session = make_session()
    removed: list[SessionError] = []
    kept = Recorder()
    session.on_session_error(removed.append)
    session.on_session_error(kept)
    session.off_session_error(removed.append)  # an equal bound method is the same listener
    session.off_session_error(kept)
    session.off_session_error(kept)  # removing an absent listener is a no-op
    session.on_session_error(kept)
    await session.connect()
    await session.simulate_scenario("sessionErrors", code=201, count=2)
    await kept.wait_for(2)
    assert removed == []


async def test_registering_twice_delivers_once(make_session: SessionFactory) -> None:
    session = make_session()
    seen = Recorder()
    session.on_session_error(seen)
    session.on_session_error(seen)
    await session.connect()
    await session.simulate_scenario("sessionErrors", code=201, count=2)
    await session.close()
    assert len(seen.items) == 2


async def test_listener_must_be_callable(make_session: SessionFactory) -> None:
    session = make_session()
    with pytest.raises(TypeError):
        session.on_session_error(42)  # type: ignore[arg-type]
