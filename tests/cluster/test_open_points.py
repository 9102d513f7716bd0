"""The cluster's former open points (docs/scaling.md): pacing across nodes, failed loads, giving up."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from .conftest import Node, RedisServer, call, home_of, start_node, token

pytestmark = pytest.mark.timeout(60)

PROTOCOL: Any = ["roomsignal.v1"]


@contextlib.asynccontextmanager
async def _members(url: str, room: str, names: list[str]) -> AsyncIterator[list[ClientConnection]]:
    async with contextlib.AsyncExitStack() as stack:
        joined = []
        for name in names:
            ws = await stack.enter_async_context(connect(url, subprotocols=PROTOCOL))
            assert "result" in await call(ws, 1, "join", token=token(room), name=name)
            joined.append(ws)
        yield joined


async def test_the_edge_paces_a_relayed_sender_by_what_the_home_wrote(redis: RedisServer) -> None:
    """``max_fanout_per_second`` holds for a client whose room is homed on another node.

    Each ``sendMessage`` into a room of 10 makes its home write 10 frames; at
    200 frames a second (a bucket of 32), 24 of them cannot take less than
    (24 x 11 - 32 - 2 x 11) / 200 = 1.05 s, however fast the machine (a lower
    bound, not a speed target). Unpaced, they took a few milliseconds each.
    """
    rate = ("--max-fanout-per-second", "200")
    started: list[Node] = list(
        await asyncio.gather(*(start_node(redis, f"p{i}", *rate) for i in (1, 2)))
    )
    try:
        names = [f"l{i}" for i in range(9)]
        async with _members(started[0].url, "paced", names) as listeners:
            home = await home_of(redis, "paced")
            edge = next(node for node in started if node.node_id != home)
            async with connect(edge.url, subprotocols=PROTOCOL) as sender:
                assert "result" in await call(sender, 1, "join", token=token("paced"), name="s")
                loop = asyncio.get_running_loop()
                began = loop.time()
                for i in range(24):
                    answer = await call(sender, 2 + i, "sendMessage", text=f"m{i}")
                    assert "result" in answer, answer
                took = loop.time() - began
            assert took >= 1.0, f"24 relayed sendMessage in {took:.2f}s: not paced"
            for ws in listeners:  # each still got every message
                texts = []
                async with asyncio.timeout(10):
                    while len(texts) < 24:
                        frame = json.loads(await ws.recv())
                        if frame.get("method") == "messageReceived":
                            texts.append(frame["params"]["text"])
                assert texts == [f"m{i}" for i in range(24)]
    finally:
        await asyncio.gather(*(node.stop() for node in started))
