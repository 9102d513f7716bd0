"""close(), cancellation, request timeouts: nothing leaks, nothing hangs."""

from __future__ import annotations

import asyncio

import pytest

from roomsignal import (
    Disconnected,
    RequestTimeoutError,
    Session,
    SessionState,
    SessionStateError,
)

from .conftest import Proxy, Recorder, SessionFactory, token


def _library_tasks() -> list[asyncio.Task[object]]:
    return [
        t for t in asyncio.all_tasks() if t.get_name().startswith("roomsignal-") and not t.done()
    ]


async def test_close_leaves_no_task_behind(make_session: SessionFactory) -> None:
    alice, bob = make_session("alice"), make_session("bob")
    alice.on_session_error(Recorder())
    alice.on_message(Recorder())
    await alice.connect()
    await bob.connect()
    await bob.send_message("hi")
    await alice.simulate_scenario("sessionErrors", code=201, count=5)
    assert _library_tasks()
    await alice.close()
    await bob.close()
    assert _library_tasks() == []
    assert alice.state is SessionState.CLOSED


async def test_close_is_idempotent_and_valid_in_every_state(make_session: SessionFactory) -> None:
    never = make_session("never")
    await never.close()
    await never.close()
    assert never.state is SessionState.CLOSED
    session = make_session()
    await session.connect()
    disconnected = Recorder()
    session.on_disconnected(disconnected)
    await asyncio.gather(session.close(), session.close(), session.close())
    assert [e.will_reconnect for e in disconnected.items] == [False]
    assert isinstance(disconnected.items[0], Disconnected)


async def test_request_timeout_is_a_client_error(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    session = make_session(url=proxy.url, request_timeout=0.2)
    seen = Recorder()
    session.on_session_error(seen)
    await session.connect()
    proxy.pause()  # the server goes silent, the connection stays up
    with pytest.raises(RequestTimeoutError) as info:
        await session.ping()
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, SessionStateError)
    error = info.value.error
    assert (error.code, error.source, error.method) == (902, "client", "ping")
    assert (await seen.wait_for(1))[0] == error
    proxy.resume()
    assert isinstance(await session.ping(), float)


async def test_cancelling_a_call_cancels_only_that_call(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    session = make_session(url=proxy.url)
    await session.connect()
    proxy.pause()
    call = asyncio.ensure_future(session.ping())
    await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    proxy.resume()
    assert isinstance(await session.ping(), float)
    assert session.state is SessionState.JOINED


async def test_connect_is_safe_to_cancel(proxy: Proxy, make_session: SessionFactory) -> None:
    session = make_session(url=proxy.url)
    proxy.pause()
    attempt = asyncio.ensure_future(session.connect())
    await asyncio.sleep(0)
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    assert session.state is SessionState.IDLE
    assert _library_tasks() == []
    proxy.resume()
    await session.connect()
    assert session.state is SessionState.JOINED


async def test_close_during_reconnection(proxy: Proxy, make_session: SessionFactory) -> None:
    session = make_session(url=proxy.url)
    reconnecting = Recorder()
    session.on_reconnecting(reconnecting)
    await session.connect()
    proxy.refuse = True
    proxy.cut()
    await reconnecting.wait_for(2)
    assert session.state is SessionState.RECONNECTING
    await session.close()
    assert session.state is SessionState.CLOSED
    assert _library_tasks() == []


async def test_a_listener_may_close_the_session(make_session: SessionFactory) -> None:
    session = make_session()
    closed = asyncio.Event()

    @session.on_session_error
    async def stop(error: object) -> None:
        await session.close()
        closed.set()

    await session.connect()
    await session.simulate_scenario("sessionErrors", code=201, count=3)
    async with asyncio.timeout(5):
        await closed.wait()
    assert session.state is SessionState.CLOSED
    await session.close()
    await asyncio.sleep(0)  # let the listener's own task return
    assert _library_tasks() == []


@pytest.mark.parametrize("url", ["ws://[::1", "http://example.test", "nope"])
def test_malformed_url_is_refused_at_once(url: str) -> None:
    with pytest.raises(ValueError, match="not a ws:// or wss:// URL"):
        Session(url, token="t", name="n")


async def test_close_after_the_session_closed_reports_nothing(
    make_session: SessionFactory,
) -> None:
    mod = make_session("mod", token=token("room", roles=["moderator"]), reconnect=None)
    errors, closed = Recorder(), Recorder()
    mod.on_session_error(errors)
    mod.on_session_closed(closed)
    await mod.connect()
    await mod.close_session("bye")
    await closed.wait_for(1)
    await mod.close()  # before or after the server's close frame: no spurious error
    assert [e.code for e in errors.items] == [203]
