#!/usr/bin/env python3
"""A synchronizer bot: plays a (pretend) video and broadcasts its position.

Its token carries the ``synchronizer`` role. Every ``--interval`` seconds it
sends ``sendSyncData`` (position, playing, rate, media id); the server relays
it to every other member as ``syncData`` and keeps the last one as the
session's ``syncState``, which a late joiner gets in its join result. Run
``examples/follower.py`` beside it to watch a follower track it.

    ROOMSIGNAL_SECRET=... python examples/synchronizer.py --session cinema --media film-1
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence

from roomsignal import Session, SessionError, SessionErrorException
from roomsignal.tokens import mint


class Player:
    """A pretend media player: the position advances with wall time while playing."""

    def __init__(self, position: float = 0.0, rate: float = 1.0) -> None:
        self.rate = rate
        self.playing = True
        self._position = position
        self._since = time.monotonic()

    @property
    def position(self) -> float:
        if not self.playing:
            return self._position
        return self._position + (time.monotonic() - self._since) * self.rate

    def pause(self) -> None:
        self._position = self.position
        self.playing = False

    def play(self) -> None:
        self._since = time.monotonic()
        self.playing = True


async def main(
    url: str,
    token: str,
    *,
    media_id: str = "big-buck-bunny",
    interval: float = 1.0,
    updates: int | None = None,
    pause_every: int = 0,
    stop: asyncio.Event | None = None,
    name: str = "synchronizer",
) -> int:
    """Broadcast the position every ``interval`` s, ``updates`` times (or until ``stop``).

    With ``pause_every`` > 0 the player pauses on every n-th update and
    resumes on the next, so followers see both states. Returns how many
    updates were sent.
    """
    stop = stop or asyncio.Event()
    player = Player()
    sent = 0
    async with Session(url, token=token, name=name) as session:

        @session.on_session_error
        def on_error(error: SessionError) -> None:
            print(f"error {error.code} {error.name} [{error.category}]: {error.message}")
            if error.code == 106:  # no synchronizer role: nothing this bot can do
                stop.set()

        print(f"{name} playing {media_id} in {session.session_id}")
        while not stop.is_set() and (updates is None or sent < updates):
            if pause_every and sent and sent % pause_every == 0:
                if player.playing:
                    player.pause()
                else:
                    player.play()
            with contextlib.suppress(SessionErrorException):  # on_error has reported it
                await session.send_sync_data(
                    player.position, player.playing, rate=player.rate, media_id=media_id
                )
                sent += 1
                state = "playing" if player.playing else "paused"
                print(f"sync #{sent}: {media_id} at {player.position:.2f} s ({state})")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    return sent


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ROOMSIGNAL_URL", "ws://127.0.0.1:8765"))
    parser.add_argument(
        "--token", default=os.environ.get("ROOMSIGNAL_TOKEN"), help="needs the synchronizer role"
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get("ROOMSIGNAL_SECRET"),
        help="mint a synchronizer token with this secret (default: $ROOMSIGNAL_SECRET)",
    )
    parser.add_argument("--session", default="cinema")
    parser.add_argument("--media", default="big-buck-bunny", help="the media id to announce")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between updates")
    parser.add_argument("--updates", type=int, default=None, help="stop after this many")
    parser.add_argument("--pause-every", type=int, default=0, help="toggle pause every n updates")
    args = parser.parse_args(argv)
    if not args.token and not args.secret:
        parser.error("give --token, or --secret (or ROOMSIGNAL_SECRET) to mint one")
    return args


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises instead
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    token = args.token or mint(args.secret, args.session, roles=["synchronizer"])
    await main(
        args.url,
        token,
        media_id=args.media,
        interval=args.interval,
        updates=args.updates,
        pause_every=args.pause_every,
        stop=stop,
    )
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    sys.exit(cli())
