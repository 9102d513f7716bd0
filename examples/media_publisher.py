#!/usr/bin/env python3
"""A media bot: publishes a file, or a moving test pattern and a tone, to every subscriber.

Each subscriber gets its own peer connection (roomsignal.media.Publisher);
one source feeds them all. Needs the media extra: pip install 'roomsignal[media]'.

    roomsignal serve --dev                      # prints a secret to export
    ROOMSIGNAL_SECRET=... python examples/media_publisher.py --name studio
    ROOMSIGNAL_SECRET=... python examples/media_publisher.py --file movie.mp4 --duration 60
    # then: python examples/media_recorder.py --target studio --frames 90
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaPlayer

from roomsignal import Session, SessionError, SessionErrorException
from roomsignal.media import Publisher, TestPatternTrack, ToneTrack
from roomsignal.protocol import SubscribeRequestParams
from roomsignal.tokens import mint


def sources(file: str | None, width: int, height: int) -> tuple[MediaStreamTrack | None, ...]:
    """(video, audio): from ``file`` (looping) or generated. Raises ``ValueError`` if none."""
    if file is None:
        return TestPatternTrack(width, height), ToneTrack()
    try:
        player = MediaPlayer(file, loop=True)
    except AssertionError:  # aiortc asserts that a looping file is seekable
        player = MediaPlayer(file)
    if player.video is None and player.audio is None:
        raise ValueError(f"{file}: no audio or video stream in it")
    return player.video, player.audio


async def main(
    url: str,
    token: str,
    *,
    name: str = "media-publisher",
    file: str | None = None,
    duration: float | None = None,
    size: tuple[int, int] = (320, 240),
    stop: asyncio.Event | None = None,
    publishing: asyncio.Event | None = None,
) -> int:
    """Publish until ``stop`` is set or ``duration`` passes; returns the subscribers served."""
    video, audio = sources(file, *size)
    served = 0

    def on_subscribe_request(event: SubscribeRequestParams) -> None:
        nonlocal served
        served += 1
        print(f"subscriber {event.subscriber_id} asked (exchange {event.exchange_id})", flush=True)

    def on_error(error: SessionError) -> None:
        print(f"error {error.code} {error.name}: {error.message}", flush=True)

    async with Session(url, token=token, name=name) as session:
        session.on_subscribe_request(on_subscribe_request)
        session.on_session_error(on_error)
        async with Publisher(session, video=video, audio=audio):
            what = file or f"a {size[0]}x{size[1]} test pattern and a 440 Hz tone"
            print(
                f"{name} joined {session.session_id} as {session.participant_id}, publishing {what}"
            )
            if publishing is not None:
                publishing.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration):
                    await (stop or asyncio.Event()).wait()
    return served


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("ROOMSIGNAL_URL", "ws://127.0.0.1:8765"))
    parser.add_argument("--token", default=os.environ.get("ROOMSIGNAL_TOKEN"))
    parser.add_argument(
        "--secret",
        default=os.environ.get("ROOMSIGNAL_SECRET"),
        help="mint a token with this secret (default: $ROOMSIGNAL_SECRET) if no --token",
    )
    parser.add_argument("--session", default="lobby", help="the session to join")
    parser.add_argument("--name", default="media-publisher")
    parser.add_argument("--file", help="publish this media file (looping) through MediaPlayer")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--width", type=int, default=320, help="test pattern width")
    parser.add_argument("--height", type=int, default=240, help="test pattern height")
    args = parser.parse_args(argv)
    if not args.token and not args.secret:
        parser.error("give --token, or --secret (or ROOMSIGNAL_SECRET) to mint one")
    if args.duration is not None and not args.duration > 0:
        parser.error("--duration must be positive")
    return args


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    token = args.token or mint(args.secret, args.session)
    served = await main(
        args.url,
        token,
        name=args.name,
        file=args.file,
        duration=args.duration,
        size=(args.width, args.height),
        stop=stop,
    )
    print(f"left after serving {served} subscription(s)")
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    try:
        return asyncio.run(run(args))
    except SessionErrorException as exc:  # e.g. 901: no server at --url
        print(f"media-publisher: {exc}", file=sys.stderr)
    except (OSError, ValueError) as exc:  # a missing or unreadable --file, a bad size
        print(f"media-publisher: {' '.join(str(exc).split())}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(cli())
