"""``roomsignal demo --web``: a live watch-together room for a person in a browser.

Starts the embedded reference server with dev tokens (``/dev/token``), a
generated clip served at ``/media/clip.webm``, a Python synchronizer bot that
plays it on a loop through ``syncData``, and a media publisher bot (aiortc)
whose test pattern every subscriber receives and which greets each newcomer
in the chat; then prints the page's URL, which joins the room at once. Runs until SIGINT or SIGTERM (or ``--seconds``).

Needs the ``media`` extra (aiortc, which brings PyAV): imported only here.
The clip is made at run time (``make_clip``); the repo ships no media.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roomsignal.cli._options import CommandError, port_number, positive_float

if TYPE_CHECKING:
    from roomsignal.client import Session
    from roomsignal.protocol import ParticipantJoinedParams

__all__ = ["add_web_options", "make_clip", "pattern_frames", "run_demo_web"]

logger = logging.getLogger("roomsignal.cli.demo")

ROOM = "watch"
CLIP = "clip.webm"
CLIP_SECONDS = 30.0
FPS = 15
WIDTH, HEIGHT = 320, 180


def add_web_options(parser: argparse.ArgumentParser) -> None:
    """``--web`` and its options, on the ``demo`` parser."""
    group = parser.add_argument_group("web demo")
    group.add_argument(
        "--web",
        action="store_true",
        help="serve a live watch-together room for a browser (needs the media extra)",
    )
    group.add_argument(
        "--port",
        type=port_number,
        default=8765,
        help="with --web: port to bind on 127.0.0.1, 0 for any (default: 8765)",
    )
    group.add_argument(
        "--seconds",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="with --web: stop after this long (default: until Ctrl-C)",
    )


def _require_av() -> Any:
    try:
        import aiortc  # noqa: F401  (the bots need it too)
        import av
    except ImportError:
        raise CommandError(
            "demo --web needs the media extra: pip install 'roomsignal[media]'"
        ) from None
    return av


# Seven 75% colour bars (BT.601 Y, U, V): white, yellow, cyan, green, magenta, red, blue.
_BARS = (
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
)


def pattern_frames(count: int, width: int = WIDTH, height: int = HEIGHT) -> Iterator[Any]:
    """``count`` yuv420p ``av.VideoFrame``s of a moving test pattern.

    Seven colour bars, with a white sweep whose column moves 4 pixels a frame,
    so that a viewer (or a decoder) can tell the frames apart.
    """
    av = _require_av()

    def row(plane: int, w: int) -> bytes:
        return bytes(_BARS[min(6, (x * 7) // w)][plane] for x in range(w))

    luma_row, u_row, v_row = row(0, width), row(1, width // 2), row(2, width // 2)
    u_plane = u_row * (height // 2)
    v_plane = v_row * (height // 2)
    for i in range(count):
        sweep = (i * 4) % width
        line = bytearray(luma_row)
        line[sweep : sweep + 4] = b"\xeb" * len(line[sweep : sweep + 4])
        frame = av.VideoFrame(width, height, "yuv420p")
        frame.planes[0].update(bytes(line) * height)
        frame.planes[1].update(u_plane)
        frame.planes[2].update(v_plane)
        yield frame


def make_clip(path: Path, seconds: float = CLIP_SECONDS, fps: int = FPS) -> Path:
    """Encode ``seconds`` of the test pattern as VP8 in WebM at ``path`` (PyAV); returns it."""
    av = _require_av()
    with av.open(str(path), mode="w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=fps)
        stream.width, stream.height = WIDTH, HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 200_000
        stream.options = {"deadline": "realtime", "cpu-used": "8"}
        for frame in pattern_frames(int(seconds * fps)):
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


async def _synchronize(session: Session, seconds: float) -> None:
    """Play the clip on a loop, restating the position every few seconds."""
    started = time.monotonic()
    while True:
        position = (time.monotonic() - started) % seconds
        await session.send_sync_data(position, True, media_id=CLIP)
        await asyncio.sleep(min(5.0, seconds - position))


async def _greet(bot: Session, event: ParticipantJoinedParams) -> None:
    """camera-bot says hello to each newcomer, in the chat (only to them)."""
    from roomsignal.errors import SessionErrorException

    newcomer = event.participant
    with contextlib.suppress(SessionErrorException):  # gone already: nobody to greet
        await bot.send_message(
            f"hi {newcomer.name}, I'm the camera; the clip loops every "
            f"{CLIP_SECONDS:g} s. Say something!",
            to=[newcomer.participant_id],
        )


async def _run(args: argparse.Namespace) -> int:
    from roomsignal.cli._serve import install_stop_signals
    from roomsignal.client import Session
    from roomsignal.server import SignalingServer
    from roomsignal.tokens import mint

    _require_av()
    from roomsignal.media import Publisher, TestPatternTrack  # needs aiortc: after the check

    # First: a Ctrl-C while the server and bots start stops them once they are up
    # (a KeyboardInterrupt in the middle of a start would tear it apart).
    stop = asyncio.Event()
    install_stop_signals(stop)
    with tempfile.TemporaryDirectory(prefix="roomsignal-demo-") as media:
        make_clip(Path(media) / CLIP)
        secret = secrets.token_urlsafe(32)
        server = SignalingServer(
            host="127.0.0.1",
            port=args.port,
            secret=secret,
            dev_tokens=True,
            media_dir=media,
            allow_simulation=True,
        )
        try:
            await server.start()
        except OSError as exc:
            raise CommandError(
                f"cannot listen on port {args.port}: {exc.strerror or exc}"
            ) from None
        try:
            sync_bot = Session(
                server.url,
                token=mint(secret, ROOM, roles=["synchronizer"]),
                name="sync-bot",
                participant_type="viewer",
            )
            camera_bot = Session(server.url, token=mint(secret, ROOM), name="camera-bot")
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(sync_bot)
                await stack.enter_async_context(camera_bot)
                # roomsignal.media answers every subscription (the page's too)
                await stack.enter_async_context(
                    Publisher(camera_bot, video=TestPatternTrack(WIDTH, HEIGHT, fps=FPS))
                )
                camera_bot.on_participant_joined(functools.partial(_greet, camera_bot))
                syncing = asyncio.create_task(_synchronize(sync_bot, CLIP_SECONDS))
                stack.callback(syncing.cancel)
                url = f"http://127.0.0.1:{server.port}/?session={ROOM}&media={CLIP}&join=1"
                print(f"roomsignal demo --web: open {url}", flush=True)
                print(
                    "  (a synchronizer bot plays the clip; camera-bot publishes a test pattern;"
                    " Ctrl-C stops)",
                    flush=True,
                )
                waiting = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait(
                        {waiting, syncing},
                        timeout=args.seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    waiting.cancel()
                if syncing.done() and not syncing.cancelled() and syncing.exception():
                    raise CommandError(f"the synchronizer bot failed: {syncing.exception()}")
                syncing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await syncing
        finally:
            await server.close()
    print("roomsignal demo --web: stopped", flush=True)
    return 0


def run_demo_web(args: argparse.Namespace) -> int:
    """Run the web demo until a signal (or ``--seconds``); exit status 0 on a clean stop."""
    return asyncio.run(_run(args))
