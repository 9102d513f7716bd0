#!/usr/bin/env python3
"""A media bot: waits for a participant to publish, subscribes, counts and records its media.

With --frames N it exits 0 once N video frames have been decoded, printing
one JSON line last: {"frames", "width", "height", "first_frame_s",
"audio_frames"}. With --record PATH it writes what it receives there with
aiortc's MediaRecorder (the format follows the extension: .mp4, .webm,
.mkv ...). Needs the media extra: pip install 'roomsignal[media]'.

    ROOMSIGNAL_SECRET=... python examples/media_recorder.py --target studio --frames 90
    ROOMSIGNAL_SECRET=... python examples/media_recorder.py --target studio --record out.mp4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from aiortc.contrib.media import MediaRecorder

from roomsignal import Session, SessionErrorException
from roomsignal.media import Subscriber, Subscription, SubscriptionClosed
from roomsignal.tokens import mint


class NotPublished(Exception):
    """The target did not publish in time."""


async def find_publisher(session: Session, name: str, timeout: float) -> str:
    """The participant id of ``name`` once it publishes (``NotPublished`` after ``timeout``)."""
    changed = asyncio.Event()
    listener = lambda event: changed.set()  # noqa: E731 - one listener for three events
    session.on_participant_joined(listener)
    session.on_stream_published(listener)
    try:
        async with asyncio.timeout(timeout):
            while True:
                for participant in session.participants.values():
                    streams = participant.streams
                    if participant.name == name and streams and (streams.audio or streams.video):
                        return participant.participant_id
                changed.clear()
                await changed.wait()
    except TimeoutError:
        raise NotPublished(f"{name!r} did not publish within {timeout:g} s") from None
    finally:
        session.off_participant_joined(listener)
        session.off_stream_published(listener)


def summary(subscription: Subscription) -> dict[str, Any]:
    counts = subscription.frames
    return {
        "frames": counts.video_frames,
        "width": counts.width,
        "height": counts.height,
        "first_frame_s": None if counts.first_frame_s is None else round(counts.first_frame_s, 4),
        "audio_frames": counts.audio_frames,
    }


async def main(
    url: str,
    token: str,
    *,
    target: str,
    name: str = "media-recorder",
    frames: int | None = None,
    record: str | None = None,
    timeout: float = 30.0,
    stop: asyncio.Event | None = None,
) -> dict[str, Any]:
    """Subscribe to ``target`` and count (and record) until ``frames`` or ``stop``."""
    async with Session(url, token=token, name=name) as session, Subscriber(session) as subscriber:
        print(f"{name} joined {session.session_id}, waiting for {target!r} to publish", flush=True)
        publisher_id = await find_publisher(session, target, timeout)
        subscription = await subscriber.subscribe(publisher_id, timeout=timeout)
        print(f"media from {target} after {subscription.frames.first_frame_s:.3f} s", flush=True)
        recorder = MediaRecorder(record) if record else None
        try:
            if recorder is not None:
                for track in (subscription.video, subscription.audio):
                    if track is not None:
                        recorder.addTrack(track)
                await recorder.start()
            waits = [asyncio.ensure_future(subscription.wait_for_frames(frames or 2**62))]
            if stop is not None:
                waits.append(asyncio.ensure_future(stop.wait()))
            try:
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
            for finished in done:
                error = None if finished.cancelled() else finished.exception()
                if error is not None and not isinstance(error, SubscriptionClosed):
                    raise error  # SubscriptionClosed: the publisher left; report what we got
        finally:
            if recorder is not None:
                await recorder.stop()
            await subscription.close()
        return summary(subscription)


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
    parser.add_argument("--name", default="media-recorder")
    parser.add_argument("--target", help="the name of the participant to record (required)")
    parser.add_argument("--frames", type=int, help="exit once this many video frames decoded")
    parser.add_argument("--record", metavar="PATH", help="record to this file (MediaRecorder)")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the target and its media"
    )
    args = parser.parse_args(argv)
    if not args.token and not args.secret:
        parser.error("give --token, or --secret (or ROOMSIGNAL_SECRET) to mint one")
    if not args.target:
        parser.error("give --target NAME: the participant whose media to record")
    if args.frames is not None and args.frames < 1:
        parser.error("--frames must be at least 1")
    if not args.timeout > 0:
        parser.error("--timeout must be positive")
    return args


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    token = args.token or mint(args.secret, args.session)
    result = await main(
        args.url,
        token,
        target=args.target,
        name=args.name,
        frames=args.frames,
        record=args.record,
        timeout=args.timeout,
        stop=stop,
    )
    if args.record:
        print(f"recorded to {args.record}")
    print(json.dumps(result), flush=True)
    if args.frames is not None and result["frames"] < args.frames:
        print(f"media-recorder: got {result['frames']} of {args.frames} frames", file=sys.stderr)
        return 1
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    try:
        return asyncio.run(run(args))
    except SessionErrorException as exc:  # 901 no server, 303, 103, ...
        print(f"media-recorder: {exc}", file=sys.stderr)
    except (NotPublished, SubscriptionClosed, OSError, ValueError) as exc:
        print(f"media-recorder: {' '.join(str(exc).split())}", file=sys.stderr)
    except TimeoutError:
        print(f"media-recorder: no media within {args.timeout:g} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(cli())
