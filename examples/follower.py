#!/usr/bin/env python3
"""A follower bot: keeps a local player in step with the session's synchronizer.

It starts from the ``syncState`` in its join result (if any), then on every
``syncData`` compares where its own player thinks it is with where the
synchronizer says it is (corrected for the time the update spent in flight,
from ``serverTime``), prints the drift, and seeks when it exceeds a threshold.

    ROOMSIGNAL_SECRET=... python examples/follower.py --session cinema
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
from dataclasses import dataclass

from roomsignal import Session
from roomsignal.protocol import SyncDataParams
from roomsignal.tokens import mint


@dataclass
class Tracked:
    """One update as the follower handled it."""

    position: float  # where the synchronizer is now (corrected for transit time)
    playing: bool
    drift: float | None  # our estimate minus theirs, before correcting (None at first)
    seeked: bool


class LocalPlayer:
    """The follower's own player: a position that advances while playing."""

    def __init__(self) -> None:
        self.playing = False
        self.rate = 1.0
        self.media_id: str | None = None
        self._position = 0.0
        self._since = time.time()
        self.started = False

    @property
    def position(self) -> float:
        elapsed = time.time() - self._since if self.playing else 0.0
        return self._position + elapsed * self.rate

    def seek(self, position: float, playing: bool, rate: float, at: float) -> None:
        self._position, self.playing, self.rate, self._since = position, playing, rate, at
        self.started = True


async def main(
    url: str,
    token: str,
    *,
    updates: int | None = None,
    threshold: float = 0.25,
    stop: asyncio.Event | None = None,
    name: str = "follower",
) -> list[Tracked]:
    """Follow until ``updates`` updates arrived (or ``stop``); returns what was tracked."""
    stop = stop or asyncio.Event()
    player = LocalPlayer()
    tracked: list[Tracked] = []

    def follow(update: SyncDataParams) -> None:
        now = time.time()
        transit = max(0.0, now - update.server_time) if update.playing else 0.0
        theirs = update.position + transit * update.rate
        drift = player.position - theirs if player.started else None
        seeked = (
            drift is None
            or abs(drift) > threshold
            or update.playing != player.playing
            or update.media_id != player.media_id
        )
        if seeked:
            player.seek(theirs, update.playing, update.rate, now)
            player.media_id = update.media_id
        tracked.append(Tracked(theirs, update.playing, drift, seeked))
        shown = "-" if drift is None else f"{drift * 1000:+.0f} ms"
        action = "seek" if seeked else "ok"
        print(
            f"{update.media_id} at {theirs:.2f} s playing={update.playing} drift={shown} {action}"
        )
        if updates is not None and len(tracked) >= updates:
            stop.set()

    session = Session(url, token=token, name=name, participant_type="viewer")
    session.on_sync_data(follow)
    async with session:
        state = session.sync_state
        if state is not None:
            player.seek(state.position, state.playing, state.rate, state.server_time)
            player.media_id = state.media_id
            print(f"joined mid-film: {state.media_id} at {player.position:.2f} s")
        else:
            print(f"{name} waiting for a synchronizer in {session.session_id}")
        await stop.wait()
    return tracked


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ROOMSIGNAL_URL", "ws://127.0.0.1:8765"))
    parser.add_argument("--token", default=os.environ.get("ROOMSIGNAL_TOKEN"))
    parser.add_argument(
        "--secret",
        default=os.environ.get("ROOMSIGNAL_SECRET"),
        help="mint a token with this secret (default: $ROOMSIGNAL_SECRET)",
    )
    parser.add_argument("--session", default="cinema")
    parser.add_argument("--updates", type=int, default=None, help="stop after this many")
    parser.add_argument("--threshold", type=float, default=0.25, help="seek beyond this drift (s)")
    args = parser.parse_args(argv)
    if not args.token and not args.secret:
        parser.error("give --token, or --secret (or ROOMSIGNAL_SECRET) to mint one")
    return args


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises instead
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    token = args.token or mint(args.secret, args.session)
    await main(args.url, token, updates=args.updates, threshold=args.threshold, stop=stop)
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    sys.exit(cli())
