"""A small app written only against the documented API, checked by ``mypy --strict``.

Two bots join one room: alice publishes, bob subscribes to her and they chat.
``tests/typecheck/test_typing.py`` type-checks this file (no ignore comment
allowed) and runs ``chat()`` against the reference server.
"""

from __future__ import annotations

import asyncio

from roomsignal import ParticipantType, Session, SessionEnded, SessionError
from roomsignal.events import MessageReceivedParams, SubscribeRequestParams


async def chat(url: str, token_a: str, token_b: str) -> tuple[list[str], SessionEnded]:
    """alice publishes, bob subscribes to her; each says hello; returns what bob heard."""
    kind: ParticipantType = "full"
    alice = Session(url, token=token_a, name="alice", participant_type=kind)
    bob = Session([url], token=token_b, name="bob", participant_type="viewer")  # failover list
    heard: list[str] = []
    got_hello = asyncio.Event()
    requested = asyncio.Event()

    @bob.on_message
    async def on_message(event: MessageReceivedParams) -> None:
        heard.append(f"{event.from_}: {event.text}")
        got_hello.set()

    @alice.on_subscribe_request
    def on_subscribe_request(event: SubscribeRequestParams) -> None:
        requested.set()

    errors: list[SessionError] = []

    @alice.on_session_error
    @bob.on_session_error
    async def on_error(error: SessionError) -> None:
        if error.recovering:
            return  # an expected refusal on the way to a fresh seat (docs/client.md)
        errors.append(error)  # e.g. 103 for bob when alice leaves mid-exchange

    async with alice, bob:
        await alice.publish(audio=True, video=False)
        exchange: str = await bob.subscribe(alice.participant_id)
        assert exchange
        await asyncio.wait_for(requested.wait(), 5)
        await alice.send_message("hello bob", to=[bob.participant_id])
        await asyncio.wait_for(got_hello.wait(), 5)
    end = await bob.wait_closed()
    return heard, end
