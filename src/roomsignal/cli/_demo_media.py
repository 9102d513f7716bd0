"""``roomsignal demo --media [--sfu]``: real audio and video through the embedded server.

One publisher bot publishes a generated test pattern and a tone
(``roomsignal.media``); two subscriber bots subscribe to it through the
reference server, each over its own aiortc peer connection on this
machine's own addresses (no ICE servers), and count what they decode. It
prints each subscriber's frames and time to first frame; exit status 0 only
if each decoded at least ``FRAMES`` video frames. Needs the media extra.

With ``--sfu`` the server routes the media through a private Janus (a child
process on 127.0.0.1, stopped on exit) and four subscribers watch: the
publisher sends one upstream to the media node, gets no
``subscribeRequest``, and the demo says how many upstreams there were
(exit 0 also needs exactly one). Needs ``janus`` too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from roomsignal.cli._demo import _quiet_logs
from roomsignal.cli._options import CommandError
from roomsignal.client import Session
from roomsignal.errors import SessionErrorException
from roomsignal.tokens import mint

__all__ = ["FRAMES", "run_media_demo"]

FRAMES = 30  # video frames each subscriber must decode
DEADLINE = 30.0  # the whole demo, server start to summary
SIZE = (320, 240)
ROOM = "screening"
SUBSCRIBERS = ("alice", "bob")
SFU_SUBSCRIBERS = ("alice", "bob", "carol", "dave")


@contextlib.asynccontextmanager
async def _quiet_media_logs(verbose: bool) -> AsyncIterator[None]:
    """aiortc and aioice log to the root logger; keep them off the demo's output too."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("aiortc", "aioice")]
    saved = [(lg, lg.propagate) for lg in loggers]
    handler = logging.NullHandler()
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, propagate in saved:
            lg.removeHandler(handler)
            lg.propagate = propagate


class _Janus:
    """A ``JanusProcess`` whose failure to start is one clear line (``CommandError``)."""

    def __init__(self, process: Any) -> None:
        self.process = process

    async def __aenter__(self) -> Any:
        try:
            await self.process.start()
        except (RuntimeError, OSError, TimeoutError) as exc:
            raise CommandError(f"demo --media --sfu: Janus did not start: {exc!r}") from None
        return self.process

    async def __aexit__(self, *exc: object) -> None:
        await self.process.stop()


async def _run(args: argparse.Namespace) -> int:
    try:
        import roomsignal.media  # noqa: F401  (aiortc: only with --media)
    except ImportError:
        raise CommandError(
            "demo --media needs the media extra: pip install 'roomsignal[media]'"
        ) from None
    from roomsignal.server import SignalingServer

    sfu = bool(getattr(args, "sfu", False))
    janus: Any = contextlib.nullcontext()
    if sfu:
        from roomsignal.server._janus_process import JanusProcess, janus_binary

        if janus_binary() is None:
            raise CommandError("demo --media --sfu needs Janus: apt-get install janus")
        janus = _Janus(JanusProcess())
    names = SFU_SUBSCRIBERS if sfu else SUBSCRIBERS
    quiet = args.json

    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    started = time.perf_counter()
    secret = secrets.token_urlsafe(24)
    results: dict[str, dict[str, Any]] = {
        name: {"frames": 0, "first_frame_s": None} for name in names
    }
    failure: str | None = None
    upstreams: int | None = None
    mode = "p2p"
    requests: list[str] = []
    async with _quiet_logs(args.verbose), _quiet_media_logs(args.verbose), janus as node:
        server = SignalingServer(
            port=0,
            secret=secret,
            sdp_timeout=10.0,
            **({"media_node": node.url} if sfu else {}),
        )
        async with server:
            title = "roomsignal demo --media --sfu" if sfu else "roomsignal demo --media"
            say(f"{title}: reference server on {server.url}")
            if sfu:
                say(f"  media node: a private Janus on {node.url} (pid {node.pid})")
            failure, upstreams, mode = await _show(
                server.url, secret, names, results, requests, say
            )
    elapsed = time.perf_counter() - started
    ok = failure is None and all(r["frames"] >= FRAMES for r in results.values())
    if sfu and failure is None and (mode != "sfu" or upstreams != 1 or requests):
        ok = False
        failure = (
            f"through the media node: media={mode!r}, {upstreams} upstream(s), "
            f"{len(requests)} subscribeRequest(s) (expected sfu, 1, 0)"
        )
    summary = {
        "ok": ok,
        "media": mode,
        "subscribers": results,
        "frames_needed": FRAMES,
        "upstreams": upstreams,
        "subscribe_requests": len(requests),
        "elapsed": round(elapsed, 3),
        "failure": failure,
    }
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        if failure:
            print(f"  FAILED: {failure}", flush=True)
        good = sum(r["frames"] >= FRAMES for r in results.values())
        verdict = "OK" if ok else "FAILED"
        print(
            f"{good}/{len(results)} subscribers decoded >= {FRAMES} video frames "
            f"in {elapsed:.1f} s: {verdict}",
            flush=True,
        )
    return 0 if ok else 1


async def _show(
    url: str,
    secret: str,
    names: tuple[str, ...],
    results: dict[str, dict[str, Any]],
    requests: list[str],
    say: Callable[[str], None],
) -> tuple[str | None, int | None, str]:
    """The publisher and the subscribers; returns (failure, upstreams, the join's media)."""
    from roomsignal.media import Publisher, Subscriber, TestPatternTrack, ToneTrack

    failure: str | None = None
    upstreams: int | None = None
    mode = "p2p"

    def session(name: str) -> Session:
        return Session(url, token=mint(secret, ROOM), name=name)

    try:
        async with (
            asyncio.timeout(DEADLINE),
            session("studio") as studio,
            Publisher(studio, video=TestPatternTrack(*SIZE), audio=ToneTrack()) as publisher,
        ):
            # Through a media node, publish answered an upstream exchange (section 10).
            mode = "sfu" if publisher.upstream_exchange_id is not None else "p2p"
            studio.on_subscribe_request(lambda event: requests.append(event.exchange_id))
            say(
                f"  studio  publishes a {SIZE[0]}x{SIZE[1]} test pattern and a 440 Hz "
                f"tone ({studio.participant_id})"
            )

            async def watch(name: str) -> None:
                async with session(name) as me, Subscriber(me) as subscriber:
                    say(f"  {name:<7} subscribes to studio")
                    subscription = await subscriber.subscribe(
                        studio.participant_id or "", timeout=DEADLINE
                    )
                    counts = await subscription.wait_for_frames(FRAMES, timeout=DEADLINE)
                    results[name] = {
                        "frames": counts.video_frames,
                        "first_frame_s": round(counts.first_frame_s or 0.0, 4),
                        "width": counts.width,
                        "height": counts.height,
                        "audio_frames": counts.audio_frames,
                    }
                    say(
                        f"  {name:<7} first frame after {counts.first_frame_s:.3f} s; "
                        f"{counts.video_frames} video frames "
                        f"({counts.width}x{counts.height}) and "
                        f"{counts.audio_frames} audio frames decoded"
                    )

            await asyncio.gather(*(watch(name) for name in names))
            upstreams = len(publisher.connections)
            if mode == "sfu":
                say(
                    f"  studio  sent {upstreams} upstream(s) to the media node for "
                    f"{len(names)} subscribers, and got {len(requests)} subscribeRequest(s)"
                )
            else:
                say(
                    f"  studio  answered {len(requests)} subscription(s), one peer "
                    "connection each, fed by one source through MediaRelay"
                )
    except TimeoutError:
        failure = f"the demo did not finish within {DEADLINE:g} s"
    except SessionErrorException as exc:
        failure = f"a bot failed: {exc}"
    return failure, upstreams, mode


def run_media_demo(args: argparse.Namespace) -> int:
    """Run the media demo; exit status 0 only if each subscriber got ``FRAMES`` video frames."""
    return asyncio.run(_run(args))
