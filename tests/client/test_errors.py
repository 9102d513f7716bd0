"""Every catalog code reaches on_session_error; errors() and wait_for_error()."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from roomsignal import (
    ErrorCode,
    MediaError,
    Session,
    SessionError,
    SessionErrorException,
    SessionStateError,
    TokenError,
    UserError,
    lookup,
)
from roomsignal.server import SignalingServer

from .conftest import Recorder, SessionFactory, token


async def _raises(call: object, kind: type[SessionErrorException], code: int) -> SessionError:
    assert asyncio.iscoroutine(call)
    with pytest.raises(kind) as info:
        await call
    assert info.value.code == code
    return info.value.error


def _check(error: SessionError, code: ErrorCode) -> None:
    assert error.code == code
    assert error.name == code.name
    assert error.category == lookup(code).category
    assert error.description == lookup(code).description
    assert error.message


async def test_every_room_code_reaches_the_listeners(
    server: SignalingServer, make_session: SessionFactory
) -> None:
    seen = Recorder()

    def session(name: str, **kwargs: Any) -> Session:
        s = make_session(name, **kwargs)
        s.on_session_error(seen)
        return s

    alice = session("alice", token=token("room", roles=["moderator"]))
    bob = session("bob")
    await alice.connect()
    await bob.connect()

    await _raises(session("x", participant_type="alien").connect(), UserError, 101)
    await _raises(bob.subscribe("nobody"), UserError, 102)
    await _raises(session("alice").connect(), UserError, 104)
    await _raises(bob.publish(audio=False, video=False), UserError, 105)
    await _raises(bob.send_sync_data(1.0, True), UserError, 106)
    novideo = session("novideo", token=token("room", video=False))
    await novideo.connect()
    await _raises(novideo.publish(audio=True, video=True), UserError, 107)
    noaudio = session("noaudio", token=token("room", audio=False))
    await noaudio.connect()
    await _raises(noaudio.publish(audio=True, video=False), UserError, 108)
    await _raises(bob.simulate_scenario("internalError"), SessionStateError, 201)
    await _raises(
        session("c", token=token("new-room", create=False)).connect(),
        SessionStateError,
        204,
    )
    # the fixture's server allows 4 streaming participants: alice, bob, novideo, noaudio
    await _raises(session("fifth").connect(), SessionStateError, 206)
    await _raises(session("bad", token="not-a-jwt").connect(), TokenError, 1101)
    await _raises(
        session("late", token=token("room", ttl=-5)).connect(),
        TokenError,
        1100,
    )

    # 303: subscribing twice to the same publisher
    await alice.publish(audio=True, video=False)
    await bob.subscribe(alice.participant_id or "")
    await _raises(bob.subscribe(alice.participant_id or ""), MediaError, 303)

    # 103: the publisher leaves mid-exchange; bob hears it as a sessionError
    closed_mid_exchange = bob.wait_for_error(103, timeout=5)
    waiter = asyncio.ensure_future(closed_mid_exchange)  # registered by the call above
    carol = session("carol", participant_type="viewer")
    await carol.connect()
    await alice.close()
    _check(await waiter, ErrorCode.USER_CLOSED_ERROR_CODE)

    # 203: a moderator closes the session; members hear it
    mod = session("mod", token=token("other", roles=["moderator"]))
    member = session("member", token=token("other"))
    await mod.connect()
    await member.connect()
    closed = member.wait_for_error(203, timeout=5)
    waiter = asyncio.ensure_future(closed)
    await mod.close_session("done")
    _check(await waiter, ErrorCode.SESSION_CLOSED_ERROR_CODE)

    wanted = {
        101, 102, 103, 104, 105, 106, 107, 108, 201, 203, 204, 206, 303, 1100, 1101
    }  # fmt: skip
    errors = await seen.wait_for(len(wanted))
    async with asyncio.timeout(5):
        while not wanted <= {e.code for e in errors}:
            await seen.wait_for(len(errors) + 1)
    for error in errors:
        _check(error, ErrorCode(error.code))


async def test_expired_token_is_found_before_dialling(make_session: SessionFactory) -> None:
    # nothing listens on this URL: the error must come without a network round trip
    session = make_session("late", token=token("room", ttl=-5), url="ws://127.0.0.1:9")
    seen = Recorder()
    session.on_session_error(seen)
    with pytest.raises(TokenError) as info:
        await session.connect()
    error = info.value.error
    _check(error, ErrorCode.TOKEN_EXPIRED)
    assert error.source == "client"
    assert (await seen.wait_for(1))[0] == error


async def test_token_provider_refreshes_an_expired_token(make_session: SessionFactory) -> None:
    calls = 0

    async def provider() -> str:
        nonlocal calls
        calls += 1
        return token("room")

    session = make_session("bot", token=token("room", ttl=-5), token_provider=provider)
    await session.connect()
    assert calls == 1


async def test_unreachable_server_is_901(make_session: SessionFactory) -> None:
    session = make_session("bot", url="ws://127.0.0.1:9")
    error = await _raises(session.connect(), SessionStateError, 901)
    assert error.source == "client"


async def test_error_is_queued_before_the_call_raises(make_session: SessionFactory) -> None:
    session = make_session()
    await session.connect()
    stream = session.errors()
    with pytest.raises(UserError):
        await session.publish(audio=False, video=False)
    # the error is already queued: taking it must not suspend (timeout(0) would fire)
    async with asyncio.timeout(0):
        error = await anext(stream)
    assert error.code == 105
    assert error.method == "publish"
    assert error.source == "server"
    assert error.session_id == "room"
    await stream.aclose()


async def test_errors_iterators_run_side_by_side(make_session: SessionFactory) -> None:
    session = make_session()
    await session.connect()
    first, second = session.errors(), session.errors()
    await session.simulate_scenario("sessionErrors", code=206, count=3)
    await session.simulate_scenario("sessionErrors", code=4242, count=1)
    got_first = [await anext(first) for _ in range(4)]
    got_second = [await anext(second) for _ in range(4)]
    assert [e.code for e in got_first] == [206, 206, 206, 4242]
    assert got_first == got_second
    unknown = got_first[-1]
    assert (unknown.category, unknown.name) == ("unknown", "UNKNOWN_4242")
    await first.aclose()
    await session.close()
    assert [e async for e in second] == []  # ends when the session closes


async def test_errors_iterator_ends_after_close(make_session: SessionFactory) -> None:
    session = make_session()
    await session.connect()
    stream = session.errors()
    await session.simulate_scenario("sessionErrors", code=303, count=2)
    got: list[SessionError] = []

    async def consume() -> None:
        async for error in stream:
            got.append(error)
            if len(got) == 2:
                await session.close()

    async with asyncio.timeout(5):
        await consume()
    assert [e.code for e in got] == [303, 303]


async def test_wait_for_error_by_code_and_timeout(make_session: SessionFactory) -> None:
    session = make_session()
    await session.connect()
    with pytest.raises(TimeoutError):
        await session.wait_for_error(timeout=0.01)
    waiter = asyncio.ensure_future(session.wait_for_error(ErrorCode.MEDIA_ENDPOINT_ERROR_CODE))
    await session.simulate_scenario("sessionErrors", code=206, count=1)
    await session.simulate_scenario("sessionErrors", code=303, count=1)
    error = await asyncio.wait_for(waiter, 5)
    assert error.code == 303
    assert error.source == "server"


async def test_wait_for_error_fails_when_session_closes(make_session: SessionFactory) -> None:
    session = make_session()
    await session.connect()
    waiter = asyncio.ensure_future(session.wait_for_error(999))
    await session.close()
    with pytest.raises(SessionStateError) as info:
        await waiter
    assert info.value.code == ErrorCode.NOT_CONNECTED_ERROR_CODE


async def test_calls_after_close_are_905(make_session: SessionFactory) -> None:
    session = make_session()
    with pytest.raises(SessionStateError) as info:
        await session.ping()
    assert info.value.code == 905
    await session.connect()
    await session.close()
    with pytest.raises(SessionStateError):
        await session.publish()
    with pytest.raises(SessionStateError):
        await session.connect()


@pytest.mark.parametrize("code", [int(c) for c in ErrorCode])
async def test_every_catalog_code_decodes_by_name(make_session: SessionFactory, code: int) -> None:
    """Vendor and JSON-RPC codes too: a server that sends them is understood."""
    session = make_session()
    await session.connect()
    waiting = asyncio.ensure_future(session.wait_for_error(code, timeout=5))
    await session.simulate_scenario("sessionErrors", code=code, count=1)
    error = await waiting
    _check(error, ErrorCode(code))
    assert error.source == "server"


async def test_one_error_stream_shared_by_two_tasks(make_session: SessionFactory) -> None:
    session = make_session()
    await session.connect()
    stream = session.errors()
    got: list[int] = []

    async def consume() -> None:
        async for error in stream:
            got.append(error.code)

    tasks = [asyncio.ensure_future(consume()) for _ in range(2)]
    await asyncio.sleep(0)
    await session.simulate_scenario("sessionErrors", code=201, count=10)
    await session.close()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert got == [201] * 10
