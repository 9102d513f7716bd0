"""Frames of one read are delivered in batches of ``FRAMES_PER_BATCH``, and none is lost on the way.

Each test joins the reference server, then hands the session's real
connection one read's worth of ``sessionError`` frames (with the seqs the
session expects next) through ``data_received``, as the transport would
after one large ``recv()``.
"""

from __future__ import annotations

import asyncio

import pytest

from roomsignal import Session, SessionError
from roomsignal.client._connection import FRAMES_PER_BATCH, DirectConnection

from .conftest import Recorder, SessionFactory

FRAMES = 1000


def _read(first_seq: int, count: int = FRAMES) -> bytes:
    """One read of ``count`` unmasked sessionError text frames from ``first_seq`` on."""
    frames = []
    for seq in range(first_seq, first_seq + count):
        params = f'{{"seq":{seq},"code":201,"message":"e{seq}","data":{{}}}}'
        payload = f'{{"jsonrpc":"2.0","method":"sessionError","params":{params}}}'.encode()
        frames.append(bytes([0x81, len(payload)]) + payload)
    return b"".join(frames)


def _connection(session: Session) -> DirectConnection:
    ws = session._ws
    assert ws is not None and ws.transport is not None
    return ws


async def test_a_large_read_is_delivered_in_turns_in_order(make_session: SessionFactory) -> None:
    session = make_session("batches", ping_interval=None)
    depths: list[int] = []
    seen: list[str] = []
    done = asyncio.Event()

    async def listener(error: SessionError) -> None:
        depths.append(len(session._hub._workers["session_error"][listener].inbox))
        seen.append(error.message)
        if len(seen) == FRAMES:
            done.set()

    session.on_session_error(listener)
    async with session:
        ws = _connection(session)
        first = session._core.last_seq + 1
        read = _read(first)
        half = len(read) // 2 + 7  # not on a frame boundary
        ws.data_received(read[:half])
        assert not ws.transport.is_reading()  # frames stay queued: nothing more is read
        ws.data_received(read[half:])  # a transport that delivers once more goes behind them
        await asyncio.sleep(0)  # one loop iteration: the listener ran on the first batch only
        assert 0 < len(seen) <= FRAMES_PER_BATCH
        async with asyncio.timeout(5):
            await done.wait()
        assert seen == [f"e{seq}" for seq in range(first, first + FRAMES)]
        assert max(depths) < FRAMES_PER_BATCH  # never more than a batch of events alive at once
        assert ws.transport.is_reading()  # all delivered: reading again
        assert isinstance(await session.ping(), float)  # and the stream goes on


@pytest.mark.parametrize("end", ["lost", "eof"])
async def test_frames_waiting_their_turn_are_delivered_before_the_end(
    make_session: SessionFactory, end: str
) -> None:
    """The connection is lost (or the stream ends) with most frames still waiting."""
    session = make_session("drop", ping_interval=None)
    errors = Recorder()
    session.on_session_error(errors)
    reconnected = Recorder()
    session.on_reconnected(reconnected)
    async with session:
        ws = _connection(session)
        first = session._core.last_seq + 1
        ws.data_received(_read(first))
        if end == "lost":
            ws.transport.abort()
        else:
            ws.eof_received()  # what the transport calls when the server's FIN comes
        got = await errors.wait_for(FRAMES)
        assert [e.message for e in got] == [f"e{seq}" for seq in range(first, first + FRAMES)]
        (event,) = await reconnected.wait_for(1)
        assert event.resumed
        assert session._core.last_seq == first + FRAMES - 1


async def test_a_held_session_takes_no_further_batch(make_session: SessionFactory) -> None:
    """Backpressure stops the batches too: a queue never holds more than its bound and a batch."""
    bound = 100
    session = make_session("held", ping_interval=None, max_queued_events=bound)
    gate = asyncio.Event()
    seen: list[str] = []
    done = asyncio.Event()

    async def slow(error: SessionError) -> None:
        await gate.wait()
        seen.append(error.message)
        if len(seen) == FRAMES:
            done.set()

    session.on_session_error(slow)
    async with session:
        ws = _connection(session)
        inbox = session._hub._workers["session_error"][slow].inbox
        first = session._core.last_seq + 1
        ws.data_received(_read(first))
        async with asyncio.timeout(5):
            while not ws.reading_held:  # noqa: ASYNC110 - a property, no event to await
                await asyncio.sleep(0)
        for _ in range(20):  # further loop iterations take no further batch
            await asyncio.sleep(0)
        assert bound <= len(inbox) < bound + FRAMES_PER_BATCH
        assert not ws.transport.is_reading()
        gate.set()
        async with asyncio.timeout(5):
            await done.wait()
        assert seen == [f"e{seq}" for seq in range(first, first + FRAMES)]
        assert not ws.reading_held and ws.transport.is_reading()
