"""Restore after a state reset: the reference server crashes and
restarts on the same port.

Both bots rejoin afresh (the new server knows no seat); the publisher
publishes again with the same flags, the subscriber subscribes again to the
publisher, matched by name, now or as it comes back; ``on_reconnected`` says so.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

from roomsignal import ReconnectPolicy
from roomsignal.events import Reconnected, Streams, SubscribeRequest
from roomsignal.server import SignalingServer
from roomsignal.testing import CutProxy

from .conftest import SECRET, Recorder, SessionFactory, free_port

POLICY = ReconnectPolicy(max_attempts=200, initial_delay=0.02, max_delay=0.05, jitter=False)


async def _crash_and_restart(old: SignalingServer, port: int, stack: AsyncExitStack) -> None:
    """The server crashes (connections aborted, no close frame) and a new one starts."""
    await old.close(graceful=False)
    await stack.enter_async_context(SignalingServer(secret=SECRET, port=port))


async def test_after_a_server_restart_the_session_publishes_and_subscribes_again(
    make_session: SessionFactory,
) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    async with AsyncExitStack() as stack:
        first_server = await stack.enter_async_context(SignalingServer(secret=SECRET, port=port))
        alice = make_session("alice", url=url, reconnect=POLICY)
        bob = make_session("bob", url=url, reconnect=POLICY)
        alice_back, bob_back, requests = Recorder(), Recorder(), Recorder()
        alice.on_reconnected(alice_back)
        bob.on_reconnected(bob_back)
        alice.on_subscribe_request(requests)
        await alice.connect()
        await bob.connect()
        await alice.publish(audio=True, video=False)
        await bob.subscribe(alice.participant_id)
        (first,) = await requests.wait_for(1)
        old_alice, old_bob = alice.participant_id, bob.participant_id

        await _crash_and_restart(first_server, port, stack)

        (a,) = await alice_back.wait_for(1)
        (b,) = await bob_back.wait_for(1)
        assert isinstance(a, Reconnected) and a.state_reset and a.republished
        assert isinstance(b, Reconnected) and b.state_reset and not b.republished
        assert (b.resubscribed, b.awaiting) in ((("alice",), ()), ((), ("alice",)))
        assert alice.participant_id != old_alice and bob.participant_id != old_bob
        # bob's new seat asks alice's new seat for her media again:
        again = (await requests.wait_for(2))[1]
        assert isinstance(again, SubscribeRequest)
        assert again.subscriber_id == bob.participant_id
        assert again.subscriber is not None and again.subscriber.name == "bob"
        # ... and alice publishes again with the same flags:
        assert alice.local_participant.streams == Streams(audio=True, video=False)
        assert requests.items.count(first) == 1
        await alice.close()
        await bob.close()


async def test_restore_is_off_for_restore_false_and_for_restore_after_reset_false(
    make_session: SessionFactory,
) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    async with AsyncExitStack() as stack:
        first_server = await stack.enter_async_context(SignalingServer(secret=SECRET, port=port))
        alice = make_session("alice", url=url, reconnect=POLICY, restore_after_reset=False)
        bob = make_session("bob", url=url, reconnect=POLICY)
        carol = make_session("carol", url=url, reconnect=POLICY)
        alice_back, bob_back = Recorder(), Recorder()
        alice.on_reconnected(alice_back)
        bob.on_reconnected(bob_back)
        for s in (alice, bob, carol):
            await s.connect()
        await alice.publish(audio=True, video=True)
        await carol.publish(audio=True, video=True)
        await bob.subscribe(alice.participant_id, restore=False)  # e.g. roomsignal.media's
        await bob.subscribe(carol.participant_id)
        await bob.unsubscribe(carol.participant_id)  # no longer wanted: not restored

        await _crash_and_restart(first_server, port, stack)

        (a,) = await alice_back.wait_for(1)
        (b,) = await bob_back.wait_for(1)
        assert a.state_reset and not a.republished and a.resubscribed == ()
        assert b.state_reset and b.resubscribed == () and b.awaiting == ()
        for s in (alice, bob, carol):
            await s.close()


async def test_a_publisher_back_later_is_subscribed_to_as_it_joins(
    make_session: SessionFactory,
) -> None:
    """bob is back first (alice's way in is refused): alice is awaited, then subscribed to."""
    port = free_port()
    async with AsyncExitStack() as stack:
        first_server = await stack.enter_async_context(SignalingServer(secret=SECRET, port=port))
        proxy = await stack.enter_async_context(CutProxy(port))
        alice = make_session("alice", url=proxy.url, reconnect=POLICY)
        bob = make_session("bob", url=f"ws://127.0.0.1:{port}", reconnect=POLICY)
        alice_tries, bob_back, requests, joined = Recorder(), Recorder(), Recorder(), Recorder()
        alice.on_reconnecting(alice_tries)
        bob.on_reconnected(bob_back)
        alice.on_subscribe_request(requests)
        bob.on_participant_joined(joined)
        await alice.connect()
        await bob.connect()
        await alice.publish(audio=False, video=True)
        await bob.subscribe(alice.participant_id)
        await requests.wait_for(1)
        proxy.refuse = True  # alice cannot get back in yet

        await _crash_and_restart(first_server, port, stack)

        (b,) = await bob_back.wait_for(1)
        assert b.state_reset and b.resubscribed == () and b.awaiting == ("alice",)
        await alice_tries.wait_for(1)
        proxy.refuse = False
        (back,) = await joined.wait_for(1)
        assert back.participant.name == "alice"
        (_, again) = await requests.wait_for(2)
        assert again.subscriber is not None and again.subscriber.name == "bob"
        assert again.subscriber_id == bob.participant_id
        await alice.close()
        await bob.close()


async def test_a_drop_during_the_restore_reconnects_at_once(make_session: SessionFactory) -> None:
    """The restore's requests do not wait out their timeout for a rejoin only it could start.

    A scripted server: the first connection seats the bot, which publishes and
    subscribes to "pub"; then the connection drops. The second one is a state
    reset, and drops at the restore's first request. The third restores all.
    """
    from websockets.asyncio.server import ServerConnection, serve

    pub = {"participantId": "p-pub", "name": "pub", "participantType": "full"}
    pub["streams"] = {"audio": True, "video": True}  # type: ignore[assignment]
    connections = 0
    dropped = asyncio.Event()

    def result(request: dict[str, Any]) -> dict[str, Any]:
        method = request["method"]
        if method == "join":
            return {
                "sessionId": "room",
                "participantId": f"p-bot-{connections}",
                "participantSecret": "s",
                "participantType": "full",
                "roles": [],
                "participants": [pub],
                "seq": 0,
                "resumed": False,
            }
        if method == "publish":
            return {"streamId": "st"}
        if method == "subscribe":
            return {"exchangeId": f"x{connections}"}
        return {}

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        async for raw in ws:
            request = json.loads(raw)
            if connections == 2 and request["method"] != "join":
                ws.transport.abort()  # the restore's first request: dropped, unanswered
                return
            await ws.send(
                json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result(request)})
            )
            if connections == 1 and request["method"] == "subscribe":
                dropped.set()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        bot = make_session(
            "bot", url=f"ws://127.0.0.1:{port}", reconnect=POLICY, request_timeout=60
        )
        back = Recorder()
        bot.on_reconnected(back)
        await bot.connect()
        await bot.publish()
        await bot.subscribe("p-pub")
        await dropped.wait()
        assert bot._ws is not None and bot._ws.transport is not None
        bot._ws.transport.abort()
        # Without the fix the restore's subscribe waited request_timeout (60 s) here.
        events = await back.wait_for(2, timeout=10)
        last = events[-1]
        assert isinstance(last, Reconnected) and last.state_reset
        assert last.republished and last.resubscribed == ("pub",)
        assert connections == 3
