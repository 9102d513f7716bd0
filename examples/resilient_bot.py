#!/usr/bin/env python3
"""A bot that survives a server restart (or a dropped connection).

The session reconnects by itself with exponential backoff and jitter
(``ReconnectPolicy``); with ``retry_first_connect`` it also waits for a server
that is not up yet, under the same policy. Back in, ``on_reconnected`` says
what happened:

- ``resumed``: the server still had our seat (a dropped connection, within
  ``resume_window``): same participant id, missed notifications replayed;
- ``state_reset``: the server had forgotten us (it restarted: its rooms live
  in memory), so the client joined afresh under a new id, and the bot
  publishes again, since a fresh seat has no streams.

Try it: export ``ROOMSIGNAL_SECRET`` (so the restarted server accepts the
same token), start ``roomsignal serve``, run the bot, kill the server
abruptly (``kill -9``: a crash) and start it again within a minute. (Ctrl-C
is a graceful shutdown: the server closes every session, members get
``sessionClosed``, and there is nothing to reconnect to.) Or, against a
server started with ``--allow-simulation``, pass ``--drop-after 2`` to have
the server cut the connection and see a resume.

    ROOMSIGNAL_SECRET=... python examples/resilient_bot.py --session lobby
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence

from roomsignal import (
    Disconnected,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    Session,
    SessionError,
    SessionErrorException,
)
from roomsignal.tokens import mint

POLICY = ReconnectPolicy(max_attempts=120, initial_delay=0.1, max_delay=1.0)


async def main(
    url: str,
    token: str,
    *,
    reconnects: int | None = None,
    drop_after: float | None = None,
    policy: ReconnectPolicy = POLICY,
    publishing: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    name: str = "resilient-bot",
) -> list[Reconnected]:
    """Stay in the session until ``stop`` (or ``reconnects`` reconnections, or a final loss).

    ``publishing`` is set whenever the bot is in and publishing (once joined,
    and again after each reconnection); ``drop_after`` asks a server
    with simulation allowed to cut the connection after that many seconds.
    Returns every ``Reconnected`` event.
    """
    stop = stop or asyncio.Event()
    back: list[Reconnected] = []
    # retry_first_connect: a server not up yet is dialled again, as after a drop
    session = Session(url, token=token, name=name, reconnect=policy, retry_first_connect=True)

    @session.on_disconnected
    def on_disconnected(event: Disconnected) -> None:
        then = "reconnecting" if event.will_reconnect else "not reconnecting"
        code = "no close frame" if event.code is None else f"close {event.code}"
        print(f"disconnected ({code}, {event.reason or 'no reason given'}): {then}")
        if not event.will_reconnect:
            stop.set()

    @session.on_reconnecting
    def on_reconnecting(event: Reconnecting) -> None:
        print(f"  attempt {event.attempt} in {event.delay * 1000:.0f} ms")

    @session.on_reconnected
    async def on_reconnected(event: Reconnected) -> None:
        if event.resumed:
            print(f"resumed as {event.participant_id}: {event.replayed} notification(s) replayed")
        else:
            # The session has published again by itself (restore_after_reset).
            again = "published again" if event.republished else "could not publish again"
            print(f"state reset: joined afresh as {event.participant_id}; {again}")
        back.append(event)
        if publishing is not None:
            publishing.set()
        if reconnects is not None and len(back) >= reconnects:
            stop.set()

    @session.on_session_error
    def on_error(error: SessionError) -> None:
        print(f"error {error.code} {error.name} [{error.category}]: {error.message}")

    async with session:
        await session.publish(audio=True, video=True)
        print(f"{name} joined {session.session_id} as {session.participant_id}, publishing")
        if publishing is not None:
            publishing.set()
        if drop_after is not None:
            await asyncio.sleep(drop_after)
            print("asking the server to cut our connection (simulateScenario connectionDrop)")
            with contextlib.suppress(SessionErrorException):
                await session.simulate_scenario("connectionDrop")
        await stop.wait()
    return back


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ROOMSIGNAL_URL", "ws://127.0.0.1:8765"))
    parser.add_argument("--token", default=os.environ.get("ROOMSIGNAL_TOKEN"))
    parser.add_argument(
        "--secret",
        default=os.environ.get("ROOMSIGNAL_SECRET"),
        help="mint a token with this secret (default: $ROOMSIGNAL_SECRET)",
    )
    parser.add_argument("--session", default="lobby")
    parser.add_argument("--reconnects", type=int, default=None, help="stop after this many")
    parser.add_argument(
        "--drop-after", type=float, default=None, help="have the server cut us after N s"
    )
    args = parser.parse_args(argv)
    if not args.token and not args.secret:
        parser.error("give --token, or --secret (or ROOMSIGNAL_SECRET) to mint one")
    return args


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    publishing = asyncio.Event()
    token = args.token or mint(args.secret, args.session)
    task = asyncio.ensure_future(
        main(
            args.url,
            token,
            reconnects=args.reconnects,
            drop_after=args.drop_after,
            publishing=publishing,
            stop=stop,
        )
    )

    def on_signal() -> None:
        # In the session: leave it cleanly. Still dialling a server not up yet: give up.
        if publishing.is_set():
            stop.set()
        else:
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises instead
            asyncio.get_running_loop().add_signal_handler(signum, on_signal)
    try:
        back = await task
    except asyncio.CancelledError:
        print("stopped before joining")
        return 0
    except SessionErrorException as exc:  # refused, or the server never came up
        print(f"could not join: {exc.error.code} {exc.error.name}: {exc.error.message}")
        return 1
    print(f"left after {len(back)} reconnection(s)")
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    try:
        return asyncio.run(run(parse(argv)))
    except KeyboardInterrupt:  # where signals cannot be caught by the loop
        return 130


if __name__ == "__main__":
    sys.exit(cli())
