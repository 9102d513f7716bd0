"""close(), cancellation, request timeouts: nothing leaks, nothing hangs."""

from __future__ import annotations

import asyncio
import copy
import pickle

import pytest

from roomsignal import (
    Disconnected,
    ErrorCode,
    ProtocolError,
    RequestTimeoutError,
    Session,
    SessionError,
    SessionErrorException,
    SessionState,
    SessionStateError,
)
from roomsignal.errors import exception_for, make_error

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


async def test_request_timeout_of_a_large_frame(proxy: Proxy, make_session: SessionFactory) -> None:
    # A frame over 16 KiB is sent under the deadline too (the other branch of the hot path).
    session = make_session(url=proxy.url, request_timeout=0.2)
    await session.connect()
    proxy.pause()
    with pytest.raises(RequestTimeoutError) as info:
        await session.send_message("x" * 20_000)
    assert (info.value.error.code, info.value.error.method) == (902, "sendMessage")
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
    await session.close()  # waits for the teardown, which waited for that listener
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


async def test_close_during_connect_wins(proxy: Proxy, make_session: SessionFactory) -> None:
    session = make_session(url=proxy.url)
    proxy.pause()  # the join never gets an answer
    attempt = asyncio.ensure_future(session.connect())
    for _ in range(20):  # let connect() reach the dial or the join
        await asyncio.sleep(0)
    await session.close()
    with pytest.raises(SessionStateError) as info:
        await attempt
    assert info.value.code == 905
    assert session.state is SessionState.CLOSED
    assert _library_tasks() == []


async def test_cancelled_close_still_closes(proxy: Proxy, make_session: SessionFactory) -> None:
    session = make_session(url=proxy.url, close_timeout=0.5)
    stream = session.errors()
    await session.connect()
    proxy.pause()  # leave will not be answered: close takes a while
    first = asyncio.ensure_future(session.close())
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await session.close()  # waits for the same teardown
    assert session.state is SessionState.CLOSED
    assert [e async for e in stream] == []
    assert _library_tasks() == []


async def test_disconnected_listener_may_await_close(make_session: SessionFactory) -> None:
    session = make_session(close_timeout=30.0)
    done = asyncio.Event()

    @session.on_disconnected
    async def on_disconnected(event: Disconnected) -> None:
        await session.close()  # close() is what emitted this event
        done.set()

    await session.connect()
    async with asyncio.timeout(5):  # not close_timeout (30 s)
        await session.close()
        await done.wait()
    assert _library_tasks() == []


async def test_failed_async_with_leaves_no_task(make_session: SessionFactory) -> None:
    session = make_session(token="not-a-jwt")
    session.on_session_error(Recorder())
    stream = session.errors()
    with pytest.raises(SessionErrorException):
        async with session:
            pass
    assert _library_tasks() == []
    assert [e.code async for e in stream] == [1101]


async def test_session_over_by_itself_ends_iterators_and_waits(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    session = make_session(url=proxy.url, reconnect=None)
    stream = session.errors()
    await session.connect()
    waiter = asyncio.ensure_future(session.wait_for_error(12345))
    proxy.cut()
    with pytest.raises(SessionStateError):
        await asyncio.wait_for(waiter, 5)
    async with asyncio.timeout(5):
        codes = [e.code async for e in stream]
    assert codes == [ErrorCode.CONNECTION_LOST_ERROR_CODE]
    with pytest.raises(SessionStateError):
        await session.wait_for_error(timeout=5)


async def test_listener_raising_cancelled_error_is_a_failure(make_session: SessionFactory) -> None:
    session = make_session(strict_listeners=False)
    seen = Recorder()

    @session.on_session_error
    def listener(error: SessionError) -> None:
        seen(error)
        raise asyncio.CancelledError("listener bug")

    await session.connect()
    await session.simulate_scenario("sessionErrors", code=201, count=3)
    await seen.wait_for(3)
    assert session.listener_failures == 3


def test_exceptions_copy_and_pickle() -> None:
    error = make_error(206, "full", {"name": "SESSION_IS_FULL_ERROR_CODE"})
    for exc in (exception_for(error), ProtocolError(make_error(-32600, "m"), 7)):
        clone = pickle.loads(pickle.dumps(exc))
        assert type(clone) is type(exc)
        assert clone.error == exc.error
        assert copy.copy(exc).error == exc.error
    assert pickle.loads(pickle.dumps(ProtocolError(make_error(-32600, "m"), 7))).request_id == 7


async def test_cancelled_join_leaves_no_ghost_seat(
    proxy: Proxy, make_session: SessionFactory
) -> None:
    """The server seated us but its answer never came: the seat must not hold our name."""
    witness = make_session("witness")
    joined, left = Recorder(), Recorder()
    witness.on_participant_joined(joined)
    witness.on_participant_left(left)
    await witness.connect()
    session = make_session("bot", url=proxy.url, close_timeout=0.2)
    proxy.pause_downstream_after_handshake()  # the join gets through; its answer is held
    attempt = asyncio.ensure_future(session.connect())
    await joined.wait_for(1)  # the server seated "bot"
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    (gone,) = await left.wait_for(1)
    assert gone.reason == "left"
    proxy.resume()
    again = make_session("bot")
    await again.connect()  # no 104: the name is free
