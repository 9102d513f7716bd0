"""What /metrics counts, provoked for real: 503 refusals, 4002 evictions, resumes, leaves."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from roomsignal import ReconnectPolicy, Session
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

from .conftest import SECRET, body_of, http_get

FAST = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, jitter=False, max_attempts=20)


async def _metrics(server: SignalingServer) -> str:
    return body_of(await http_get(server.port, "/metrics")).decode()


async def test_refused_handshakes_and_slow_consumers_are_counted() -> None:
    async with SignalingServer(
        secret=SECRET,
        metrics=True,
        allow_simulation=True,
        max_connections=1,
        max_send_queue_bytes=4096,
    ) as server:
        async with connect(server.url, subprotocols=["roomsignal.v1"]) as ws:  # type: ignore[list-item]
            try:
                async with connect(server.url):
                    raise AssertionError("a second connection was let in")
            except InvalidStatus as exc:
                assert exc.response.status_code == 503
            join = {"token": mint(SECRET, "slow"), "name": "slow"}
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "join", "params": join}))
            await ws.recv()
            burst = {"scenario": "sessionErrors", "code": 303, "count": 100000}
            frame = {"jsonrpc": "2.0", "id": 2, "method": "simulateScenario", "params": burst}
            await ws.send(json.dumps(frame))
            # Not reading: the server's queue for us passes 4096 bytes and it evicts us
            # (this client cannot see it until it reads: poll the server's count).
            async with asyncio.timeout(20):
                while server.counts.evictions == 0:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            ws.transport.abort()
        text = await _metrics(server)
    assert "roomsignal_refused_handshakes_total 1.0" in text
    assert "roomsignal_slow_consumer_evictions_total 1.0" in text
    assert "roomsignal_leaves_total" not in text or 'reason="left"' not in text


async def test_resumes_leaves_and_notifications_are_counted() -> None:
    async with SignalingServer(secret=SECRET, metrics=True, allow_simulation=True) as server:
        alice = Session(server.url, token=mint(SECRET, "room"), name="alice", reconnect=FAST)
        bob = Session(server.url, token=mint(SECRET, "room"), name="bob", reconnect=FAST)
        back = asyncio.Event()
        alice.on_reconnected(lambda event: back.set())
        async with alice:
            async with bob:
                await bob.send_message("one")
                await alice.simulate_scenario("connectionDrop")  # answered after the resume
                async with asyncio.timeout(10):
                    await back.wait()
                await bob.send_message("two")
            text = await _metrics(server)
    assert "roomsignal_resumes_total 1.0" in text
    assert 'roomsignal_leaves_total{reason="left"} 1.0' in text
    assert 'roomsignal_joins_total{type="full"} 2.0' in text
    # alice: bob joined, "one", "two", bob left; bob: nothing after his join
    assert "roomsignal_notifications_total 4.0" in text
    assert 'roomsignal_participants{connected="true",type="full"} 1.0' in text


async def test_a_closed_session_keeps_its_notifications_counted_and_counts_its_seats() -> None:
    """``roomsignal_notifications`` is a counter: a session's end must not take it down."""
    async with SignalingServer(secret=SECRET, metrics=True) as server:
        host = Session(
            server.url, token=mint(SECRET, "room", roles=["moderator"]), name="host", reconnect=None
        )
        guest = Session(server.url, token=mint(SECRET, "room"), name="guest", reconnect=None)
        closed = asyncio.Event()
        guest.on_session_closed(lambda event: closed.set())
        async with host, guest:
            await guest.send_message("one")  # host: guest joined, "one"
            before = await _metrics(server)
            assert "roomsignal_notifications_total 2.0" in before
            await host.close_session()
            async with asyncio.timeout(10):
                await closed.wait()
            text = await _metrics(server)
    # each: sessionError 203 and sessionClosed, on top of the two before
    assert "roomsignal_notifications_total 6.0" in text
    assert 'roomsignal_leaves_total{reason="sessionClosed"} 2.0' in text
    assert "roomsignal_sessions 0.0" in text
