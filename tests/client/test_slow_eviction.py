"""End to end: the reference server evicts a slow consumer (4002); it resumes, losing nothing.

alice's listener is held, so her session stops reading (backpressure); bob's
chat piles up in the server's send queue for her until it passes
``max_send_queue_bytes`` and the server closes her with 4002. Once her
listener is let go she reads the rest, sees the close, resumes from her last
``seq``, and the replay fills the gap: every message arrives once, in order.
"""

from __future__ import annotations

import asyncio
import logging

from roomsignal import Session
from roomsignal.events import Disconnected, MessageReceived, Reconnected
from roomsignal.server import SignalingServer
from roomsignal.testing import FAST_RECONNECT

from .conftest import SECRET, Recorder, token

COUNT = 600
PAD = "x" * 8000  # 600 x 8 KB: far more than the socket buffers and the send queue


class _Evicted(logging.Handler):
    """Sets ``event`` when the server logs that it closes a slow consumer."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "slow consumer" in record.getMessage():
            self.event.set()


async def test_a_slow_consumer_evicted_with_4002_resumes_with_nothing_lost() -> None:
    evicted = _Evicted()
    server_log = logging.getLogger("roomsignal.server")
    server_log.addHandler(evicted)
    try:
        async with SignalingServer(
            secret=SECRET,
            max_send_queue_bytes=64 * 1024,
            replay_buffer=4 * COUNT,
            replay_buffer_bytes=32 * 2**20,
            resume_window=30.0,
        ) as server:
            alice = Session(
                server.url,
                token=token(),
                name="alice",
                reconnect=FAST_RECONNECT,
                max_queued_events=16,
                ping_interval=None,
                strict_listeners=True,
            )
            bob = Session(server.url, token=token(), name="bob", strict_listeners=True)
            gate = asyncio.Event()
            texts: list[str] = []
            all_in = asyncio.Event()

            @alice.on_message
            async def slow(event: MessageReceived) -> None:
                await gate.wait()
                texts.append(event.text[:5])
                if len(texts) == COUNT:
                    all_in.set()

            closes, back = Recorder(), Recorder()
            alice.on_disconnected(closes)
            alice.on_reconnected(back)
            async with alice, bob:
                first_id = alice.participant_id
                for i in range(COUNT):
                    await bob.send_message(f"{i:05d}{PAD}")
                    if evicted.event.is_set():
                        break
                await asyncio.wait_for(evicted.event.wait(), 30)
                for j in range(i + 1, COUNT):  # the rest, while alice is away
                    await bob.send_message(f"{j:05d}{PAD}")
                gate.set()
                await asyncio.wait_for(all_in.wait(), 60)
                (closed,) = await closes.wait_for(1)
                (again,) = await back.wait_for(1)
                assert isinstance(closed, Disconnected) and closed.code == 4002
                assert closed.will_reconnect
                assert isinstance(again, Reconnected) and again.resumed and again.replayed > 0
                assert not again.state_reset and alice.participant_id == first_id
                assert texts == [f"{k:05d}" for k in range(COUNT)], "lost or duplicated"
    finally:
        server_log.removeHandler(evicted)
