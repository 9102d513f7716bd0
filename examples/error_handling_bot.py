#!/usr/bin/env python3
"""An error-handling bot: one ``on_session_error`` listener, one reaction per category.

Every error reaches the listener as a ``SessionError`` with a ``category``:

- ``user``: the request was wrong for this participant: fix it and go on
  (105 on ``publish``: publish audio only instead);
- ``session``: the session's state: back off and retry when the catalog says
  it is ``retryable`` (201), leave when the session is over (203);
- ``media``: an exchange failed: drop it (``unsubscribe``) so it can start over;
- ``token``: the token was refused: mint a fresh one and join again;
- ``protocol``: client and server disagree on the protocol: log it all for a
  bug report, never retry;
- ``unknown``: a code this client does not know (a newer server's): keep the
  number, log it, carry on.

The bot triggers one error of each kind on purpose, then leaves; the
``session`` and ``unknown`` ones need a server started with
``--allow-simulation`` (without it they come back as ``protocol`` -32601).

    roomsignal serve --dev --allow-simulation
    ROOMSIGNAL_SECRET=... python examples/error_handling_bot.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from roomsignal import Session, SessionError, SessionErrorException, TokenError
from roomsignal.protocol import SdpNotificationParams, SubscribeRequestParams
from roomsignal.tokens import mint

CATEGORIES = ("user", "session", "media", "token", "protocol", "unknown")


@dataclass(frozen=True)
class Reaction:
    """What the bot did about one error."""

    category: str
    code: int
    name: str
    action: str


class ErrorHandler:
    """The listener: decides, per category, what to do about each error, and does it."""

    def __init__(self, session: Session, label: str) -> None:
        self.session = session
        self.label = label
        self.reactions: list[Reaction] = []
        self.changed = asyncio.Event()
        self.over = asyncio.Event()
        session.on_session_error(self.on_error)

    async def on_error(self, error: SessionError) -> None:
        react = getattr(self, f"on_{error.category}")
        action: str = await react(error)
        self.reactions.append(Reaction(error.category, error.code, error.name, action))
        print(f"[{self.label}] {error.category:<8} {error.code} {error.name}: {error.message}")
        print(f"{'':>{len(self.label) + 3}}-> {action}")
        self.changed.set()

    async def on_user(self, error: SessionError) -> str:
        if error.code == 105 and error.method == "publish":
            with contextlib.suppress(SessionErrorException):  # a new error comes here too
                await self.session.publish(audio=True, video=False)
                return "fixed the request: now publishing audio only"
        return f"gave up on {error.method or 'the request'}: {error.description}"

    async def on_session(self, error: SessionError) -> str:
        if error.code == 203:
            self.over.set()
            return "the session is over: leaving"
        if error.retryable:
            started = time.perf_counter()
            await asyncio.sleep(0.05)  # back off before trying again
            with contextlib.suppress(SessionErrorException):
                await self.session.ping()
                elapsed = (time.perf_counter() - started) * 1000
                return f"transient: backed off, server answers again ({elapsed:.0f} ms): retry"
            return "transient, but the server does not answer: wait for the reconnection"
        return f"cannot continue here: {error.description}"

    async def on_media(self, error: SessionError) -> str:
        target = error.data.get("participantId")
        if isinstance(target, str) and target != self.session.participant_id:
            with contextlib.suppress(SessionErrorException):
                await self.session.unsubscribe(target)
                return f"dropped the exchange with {target}: it can start over"
        return "dropped the exchange"

    async def on_token(self, error: SessionError) -> str:
        return "token refused: minting a fresh one and joining again"

    async def on_protocol(self, error: SessionError) -> str:
        return f"logged for a bug report (method={error.method}, data={error.data}); no retry"

    async def on_unknown(self, error: SessionError) -> str:
        return f"unknown code {error.code} kept by number and logged; carrying on"


async def _until(handler: ErrorHandler, done: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not done():
            handler.changed.clear()
            await handler.changed.wait()


async def main(url: str, secret: str, *, session_id: str = "errors-demo") -> list[Reaction]:
    """Join, provoke one error of each category, react to each; returns the reactions."""

    def token(ttl: float = 3600.0) -> str:
        return mint(secret, session_id, ttl=ttl)

    bot = Session(url, token=token(), name="error-bot")
    handler = ErrorHandler(bot, "error-bot")

    async def answer_offer(event: SdpNotificationParams) -> None:
        with contextlib.suppress(SessionErrorException):  # on_error has it
            await bot.send_answer(event.exchange_id, "v=0\r\n")

    bot.on_sdp_offer(answer_offer)
    peer = Session(url, token=token(), name="peer")

    async def offer(event: SubscribeRequestParams) -> None:
        await peer.send_offer(event.exchange_id, "v=0\r\n")

    peer.on_subscribe_request(offer)
    established = asyncio.Event()
    peer.on_sdp_answer(lambda event: established.set())
    async with bot, peer:
        await peer.publish(audio=True, video=True)
        count = len(handler.reactions)

        async def provoke(call: Awaitable[object]) -> None:
            nonlocal count
            with contextlib.suppress(SessionErrorException):  # the listener reacts to it
                await call
            count += 1
            await _until(handler, lambda: len(handler.reactions) >= count)

        # user: 105, fixed by publishing audio only (which then succeeds)
        await provoke(bot.publish(audio=False, video=False))
        # media: subscribe to the peer, then again: 303, dropped by unsubscribing
        assert peer.participant_id is not None
        await bot.subscribe(peer.participant_id)
        await asyncio.wait_for(established.wait(), 5)  # offer and answer went through
        await provoke(bot.subscribe(peer.participant_id))
        # session: 201 on demand (simulation), retried after a back-off
        await provoke(bot.simulate_scenario("internalError"))
        # protocol: a scenario the server does not know (-32602; -32601 without simulation)
        await provoke(bot.simulate_scenario("noSuchScenario"))
        # unknown: a code no catalog knows, as a sessionError notification
        await provoke(bot.simulate_scenario("sessionErrors", code=4242))

        # token: join with an expired token; react by minting a fresh one
        late = Session(url, token=token(ttl=-60), name="late-bot")
        late_handler = ErrorHandler(late, "late-bot")
        try:
            await late.connect()
        except TokenError:
            await _until(late_handler, lambda: bool(late_handler.reactions))
            await late.close()
            late = Session(url, token=token(), name="late-bot")
            await late.connect()
            print(f"[late-bot] joined with a fresh token as {late.participant_id}")
        finally:
            await late.close()
    return handler.reactions + late_handler.reactions


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ROOMSIGNAL_URL", "ws://127.0.0.1:8765"))
    parser.add_argument(
        "--secret",
        default=os.environ.get("ROOMSIGNAL_SECRET"),
        help="the server's secret, to mint tokens (default: $ROOMSIGNAL_SECRET)",
    )
    parser.add_argument("--session", default="errors-demo")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("give --secret (or set ROOMSIGNAL_SECRET): the bot mints its own tokens")
    return args


def cli(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    try:
        reactions = asyncio.run(main(args.url, args.secret, session_id=args.session))
    except SessionErrorException as exc:  # e.g. 901: no server at --url
        print(f"error-handling-bot: {exc}", file=sys.stderr)
        return 1
    seen = {r.category for r in reactions}
    print("categories handled: " + ", ".join(c for c in CATEGORIES if c in seen))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
