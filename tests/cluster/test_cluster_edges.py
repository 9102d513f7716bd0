"""The cluster's edges: 4001 across nodes, bad relay messages, bad --redis, no redis on import."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .conftest import SECRET, Node, RedisServer, _free_port, token

pytestmark = pytest.mark.timeout(60)


async def call(ws: ClientConnection, request_id: int, method: str, **params: Any) -> dict[str, Any]:
    """Send a request; the response to it (notifications before it are skipped)."""
    await ws.send(
        json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    )
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("id") == request_id:
                return dict(frame)


async def test_takeover_across_nodes_closes_the_old_connection_with_4001(nodes: list[Node]) -> None:
    n1, n2, n3 = nodes
    async with (
        connect(n1.url, subprotocols=["roomsignal.v1"]) as old,  # type: ignore[list-item]
        connect(n2.url, subprotocols=["roomsignal.v1"]) as new,  # type: ignore[list-item]
        connect(n3.url, subprotocols=["roomsignal.v1"]) as other,  # type: ignore[list-item]
    ):
        joined = (await call(old, 1, "join", token=token("take"), name="bob"))["result"]
        await call(other, 1, "join", token=token("take"), name="alice")
        await call(other, 2, "sendMessage", text="hi")
        resumed = await call(
            new,
            1,
            "join",
            token=token("take"),
            name="bob",
            oldParticipantSecret=joined["participantSecret"],
            lastSeq=0,
        )
        assert resumed["result"]["resumed"] is True
        assert resumed["result"]["participantId"] == joined["participantId"]
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await old.recv()
        assert old.close_code == 4001
        # the replayed message reached the new connection, on another node
        async with asyncio.timeout(10):
            while True:
                frame = json.loads(await new.recv())
                if frame.get("method") == "messageReceived":
                    assert frame["params"]["text"] == "hi"
                    break


async def test_a_malformed_relay_message_is_logged_and_ignored(
    nodes: list[Node], redis: RedisServer
) -> None:
    from redis.asyncio import Redis

    n1, n2, _ = nodes
    client = Redis.from_url(redis.url)
    try:
        for junk in (b"not json", b"[1,2]", b'{"k":"f","n":"zz","c":"x"}', b'{"k":"w"}'):
            for node in nodes:
                await client.publish(f"roomsignal:to:{node.node_id}", junk)
    finally:
        await client.aclose()
    async with (
        connect(n1.url, subprotocols=["roomsignal.v1"]) as a,  # type: ignore[list-item]
        connect(n2.url, subprotocols=["roomsignal.v1"]) as b,  # type: ignore[list-item]
    ):
        assert "result" in await call(a, 1, "join", token=token("junk"), name="a")
        assert "result" in await call(b, 1, "join", token=token("junk"), name="b")
        assert "result" in await call(b, 2, "ping")
    for node in nodes:
        assert await node.health() == 200


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roomsignal", "serve", "--secret", SECRET, "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_serve_with_an_unreachable_redis_says_so() -> None:
    done = _serve("--redis", f"redis://127.0.0.1:{_free_port()}/0")
    assert done.returncode != 0
    assert "cannot reach Redis" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_with_a_bad_redis_url_says_so() -> None:
    done = _serve("--redis", "http://127.0.0.1:1/0")
    assert done.returncode != 0
    assert "bad --redis URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_importing_roomsignal_never_imports_redis() -> None:
    code = (
        "import sys, roomsignal, roomsignal.server, roomsignal.cli; "
        "import roomsignal.server._cluster, roomsignal.cli._cluster; "
        "assert 'redis' not in sys.modules, sorted(m for m in sys.modules if 'redis' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
