"""Bounded memory under a flood, however slow the app (issue 15): backpressure, not drops.

The reference server streams 100 000 ``sessionError`` notifications (in four
bursts of 25 000, each with its own code, so that order shows) to a client
whose listener, or ``errors()`` iterator, does not keep up. The client must
stop reading at its bound (its heap grows by less than 64 MiB, traced with
``tracemalloc``), and once the app catches up every event must arrive, once,
in order.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Callable

from roomsignal import Session, SessionError

from .conftest import SessionFactory

BURST = 25_000
CODES = (201, 303, 105, 206)
TOTAL = BURST * len(CODES)
BOUND = 64 * 2**20


async def _until(condition: Callable[[], bool], timeout: float) -> None:
    """Wait for ``condition`` to hold, looking at it every 5 ms (bounded by ``timeout``).

    The conditions are the session's read-only properties, which no event
    signals (and "paused, or read everything" is two of them at once).
    """
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - see the docstring
            await asyncio.sleep(0.005)


async def _flood(session: Session) -> list[asyncio.Future[None]]:
    """Ask for the four bursts; the server answers each only after the one before."""
    return [
        asyncio.ensure_future(session.simulate_scenario("sessionErrors", code=code, count=BURST))
        for code in CODES
    ]


def _in_order(codes: list[int]) -> None:
    assert len(codes) == TOTAL
    expected = [code for code in CODES for _ in range(BURST)]
    assert codes == expected, "an event was lost, duplicated or reordered"


async def test_a_slow_listener_holds_the_reader_back_and_loses_nothing(
    make_session: SessionFactory,
) -> None:
    session = make_session("slow", ping_interval=None, request_timeout=120.0)
    gate = asyncio.Event()
    codes: list[int] = []
    done = asyncio.Event()

    async def slow(error: SessionError) -> None:
        await gate.wait()
        codes.append(error.code)
        if len(codes) == TOTAL:
            done.set()

    session.on_session_error(slow)
    await session.connect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        calls = await _flood(session)
        # Without backpressure every event would be read and queued: wait for either.
        await _until(lambda: session.reading_paused or session.last_seq >= TOTAL, 60)
        assert session.reading_paused, "the client read on while its listener was behind"
        assert session.last_seq < TOTAL
        held = tracemalloc.get_traced_memory()[0] - base
        gate.set()
        async with asyncio.timeout(120):
            await done.wait()
            await asyncio.gather(*calls)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert held < BOUND and peak < BOUND, (held, peak)
    _in_order(codes)
    assert session.last_seq == TOTAL
    assert not session.reading_paused
    assert await session.ping() > 0  # still reading, still answering


async def test_an_unread_errors_iterator_holds_the_reader_back_and_loses_nothing(
    make_session: SessionFactory,
) -> None:
    session = make_session("unread", ping_interval=None, request_timeout=120.0)
    await session.connect()
    errors = session.errors()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        calls = await _flood(session)
        await _until(lambda: session.reading_paused or session.last_seq >= TOTAL, 60)
        assert session.reading_paused, "the client read on while an iterator was unread"
        held = tracemalloc.get_traced_memory()[0] - base
        codes: list[int] = []
        async with asyncio.timeout(120):
            async for error in errors:
                codes.append(error.code)
                if len(codes) == TOTAL:
                    break
            await asyncio.gather(*calls)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert held < BOUND and peak < BOUND, (held, peak)
    _in_order(codes)
    await errors.aclose()
    assert not session.reading_paused


async def test_a_dropped_iterator_holds_nothing_back(make_session: SessionFactory) -> None:
    """An iterator nobody holds any more must not keep the session from reading."""
    session = make_session("dropper", ping_interval=None, max_queued_events=64)
    await session.connect()
    errors = session.errors()
    await session.simulate_scenario("sessionErrors", code=201, count=200)
    await _until(lambda: session.reading_paused, 10)
    del errors  # dropped unread, without aclose()
    await _until(lambda: not session.reading_paused, 10)
    assert await session.ping() > 0
    await _until(lambda: session.last_seq == 200, 10)
