"""A rolling restart loses nothing (docs/operations.md, "Restart"; figures in docs/scaling.md).

Three nodes (real ``roomsignal serve --redis`` processes) behind a small
TCP balancer that sends each new connection to the next node whose
``/healthz`` answers 200, as a load balancer does. Chat flows in three
rooms while each node, one after another, gets SIGTERM (it drains: its rooms move,
its clients are closed with 1012 and resume elsewhere) and is started
again. Every message arrives exactly once, in order; nobody is told
``state_reset``; no session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from roomsignal import ReconnectPolicy, Session
from roomsignal.client import Disconnected, Reconnected

from .conftest import Node, Recorder, RedisServer, send_surely, session, start_node, wait_health

pytestmark = pytest.mark.timeout(120)

PATIENT = ReconnectPolicy(initial_delay=0.05, max_delay=0.3, jitter=False, max_attempts=400)
ROOMS = ("r1", "r2", "r3")


class Balancer:
    """A TCP balancer on loopback: each new connection goes to the next healthy node."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes
        self.port = 0
        self._next = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Balancer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _healthy(self, node: Node) -> bool:
        with contextlib.suppress(OSError, IndexError, ValueError):
            return node.process.returncode is None and await node.health() == 200
        return False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        for _ in range(len(self.nodes)):
            node = self.nodes[self._next % len(self.nodes)]
            self._next += 1
            if not await self._healthy(node):
                continue
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", node.port)
            except OSError:
                continue
            self._writers.add(up_writer)
            for src, dst in ((reader, up_writer), (up_reader, writer)):
                task = asyncio.get_running_loop().create_task(self._pump(src, dst))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return
        writer.transport.abort()  # no node healthy: the client retries
        self._writers.discard(writer)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            if dst.can_write_eof():
                dst.write_eof()
        with contextlib.suppress(OSError, ConnectionError):
            dst.close()
        self._writers.discard(dst)


@contextlib.asynccontextmanager
async def chat(talker: Session, period: float) -> AsyncIterator[list[str]]:
    """``talker`` sends m0, m1, ... every ``period`` until the block ends; yields what it sent.

    At the end the message being sent is let through (not cancelled half-way:
    it may have reached the room already), then the loop stops.
    """
    sent: list[str] = []
    stop = asyncio.Event()

    async def run() -> None:
        while not stop.is_set():
            text = f"m{len(sent)}"
            await send_surely(talker, text)
            sent.append(text)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await stop.wait()

    task = asyncio.get_running_loop().create_task(run())
    try:
        yield sent
    finally:
        stop.set()
        try:
            async with asyncio.timeout(30):
                await task
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_rolling_restart_loses_nothing(redis: RedisServer, sessions: list[Any]) -> None:
    nodes = list(await asyncio.gather(*(start_node(redis, f"n{i}") for i in (1, 2, 3))))
    figures: dict[str, Any] = {"nodes": [], "members": []}
    try:
        async with Balancer(nodes) as balancer:
            members: dict[str, list[Session]] = {}
            inboxes: dict[Session, Recorder] = {}
            events: dict[Session, list[Any]] = {}
            gaps: list[float] = []
            for room in ROOMS:
                members[room] = []
                for name in ("talker", "a", "b"):
                    member = session(sessions, balancer.url, room, name, reconnect=PATIENT)
                    inboxes[member] = Recorder()
                    member.on_message(lambda m, inbox=inboxes[member]: inbox(m.text))
                    seen = events[member] = []
                    lost_at: list[float] = []
                    member.on_disconnected(
                        lambda e, seen=seen, lost_at=lost_at: (
                            seen.append(e),
                            lost_at.append(time.monotonic()),
                        )
                    )
                    member.on_reconnected(
                        lambda e, seen=seen, lost_at=lost_at: (
                            seen.append(e),
                            gaps.append(time.monotonic() - lost_at[-1]),
                        )
                    )
                    member.on_session_closed(seen.append)
                    members[room].append(member)
            await asyncio.gather(*(m.connect() for ms in members.values() for m in ms))
            async with contextlib.AsyncExitStack() as stack:
                sent = {
                    room: await stack.enter_async_context(chat(ms[0], 0.02))
                    for room, ms in members.items()
                }
                await asyncio.gather(*(inboxes[ms[1]].wait_for(5) for ms in members.values()))
                for index in range(len(nodes)):
                    node = nodes[index]
                    began = time.monotonic()
                    node.process.send_signal(signal.SIGTERM)
                    async with asyncio.timeout(30):
                        assert await node.process.wait() == 0
                    exited = time.monotonic()
                    nodes[index] = await start_node(redis, node.node_id)
                    await wait_health(nodes[index], 200)
                    balancer.nodes = nodes
                    figures["nodes"].append(
                        {
                            "node": node.node_id,
                            "drained_s": round(exited - began, 3),
                            "back_s": round(time.monotonic() - began, 3),
                        }
                    )
                    marks = {room: len(s) for room, s in sent.items()}  # chat goes on meanwhile
                    await asyncio.gather(
                        *(
                            inboxes[m].wait_for(marks[room] + 3, timeout=30)
                            for room, ms in members.items()
                            for m in ms[1:]
                        )
                    )
            for room, ms in members.items():
                expected = sent[room]
                for member in ms[1:]:
                    got = await inboxes[member].wait_for(len(expected), timeout=30)
                    assert got == expected, f"{room}/{member.name}: {got[:20]}..."
            every = [e for seen in events.values() for e in seen]
            reconnects = [e for e in every if isinstance(e, Reconnected)]
            assert reconnects, "no member was moved: the restart was not exercised"
            assert all(e.resumed and not e.state_reset for e in reconnects), reconnects
            assert not [e for e in every if isinstance(e, Disconnected) and not e.will_reconnect]
            assert not [e for e in every if not isinstance(e, Disconnected | Reconnected)]
            assert all(m.state != "closed" for ms in members.values() for m in ms)
            figures["members"] = sorted(round(g, 3) for g in gaps)
            figures["moved"] = len(reconnects)
            figures["messages"] = {room: len(s) for room, s in sent.items()}
    finally:
        await asyncio.gather(*(node.stop() for node in nodes))
    out = os.environ.get("RS_ROLLING_FIGURES")
    if out:  # docs/scaling.md's figures: RS_ROLLING_FIGURES=path pytest ...
        await asyncio.to_thread(Path(out).write_text, json.dumps(figures, indent=1))
