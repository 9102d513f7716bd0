"""Media benchmarks: time to first frame through the signaling, and subscribers per publisher.

    python benchmarks/media.py                 # both, a table, about 1 to 2 minutes
    python benchmarks/media.py --json          # ... then one JSON object on the last line
    python benchmarks/media.py --only first    # or --only capacity

``first``: the time from ``Subscriber.subscribe()`` to the first decoded video
frame, through the reference server (in this process, over loopback), against
the same two aiortc peers wired to each other directly in this process (the
floor: offer, answer, ICE, DTLS, the first key frame). Runs alternate
between the two; ``media_first_frame_ratio`` is p50 and p99 of the first
over the second. Target: p50 <= 1.2.

``capacity``: one publisher bot in its own process (its own CPU when there
are two) serves K subscribers at once (in this process, with the server);
K grows until a subscriber falls under ``--min-fps``. Both processes' CPU
use is reported, to tell which side ran out first.

Peer connections use no ICE servers (host candidates on this machine's own
addresses); the signaling dials only 127.0.0.1. Every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from aiortc import MediaStreamTrack, RTCPeerConnection  # noqa: E402
from aiortc.contrib.media import MediaRelay  # noqa: E402
from workloads import percentile, proc_cpu_s  # noqa: E402

from roomsignal import Session  # noqa: E402
from roomsignal.media import (  # noqa: E402
    Publisher,
    Subscriber,
    TestPatternTrack,
    default_configuration,
)
from roomsignal.server import SignalingServer  # noqa: E402
from roomsignal.tokens import mint  # noqa: E402

ROOM = "bench-media"


def log(message: str) -> None:
    print(f"[media] {message}", file=sys.stderr, flush=True)


# --- time to first frame ---------------------------------------------------------


async def direct_first_frame(source: MediaStreamTrack, timeout: float) -> float:
    """Seconds from nothing to the first decoded frame, two peers wired in this process."""
    started = time.perf_counter()
    sender = RTCPeerConnection(default_configuration())
    receiver = RTCPeerConnection(default_configuration())
    first: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    readers: list[asyncio.Task[None]] = []

    @receiver.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        async def read() -> None:
            with contextlib.suppress(Exception):
                await track.recv()
                if not first.done():
                    first.set_result(time.perf_counter() - started)

        readers.append(asyncio.ensure_future(read()))

    try:
        sender.addTransceiver(source, direction="sendonly")
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        return await asyncio.wait_for(first, timeout)
    finally:
        await sender.close()
        await receiver.close()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


async def first_frames(runs: int, size: tuple[int, int], timeout: float) -> dict[str, Any]:
    secret = secrets.token_hex(16)
    signaled: list[float] = []
    direct: list[float] = []
    source = TestPatternTrack(*size)  # one running source for the direct pairs, via a relay
    relay = MediaRelay()
    async with SignalingServer(secret=secret, sdp_timeout=timeout) as server:
        studio = Session(server.url, token=mint(secret, ROOM, ttl=3600), name="studio")
        viewer = Session(
            server.url, token=mint(secret, ROOM, ttl=3600), name="viewer", participant_type="viewer"
        )
        async with (
            studio,
            viewer,
            Publisher(studio, video=TestPatternTrack(*size)) as publisher,
            Subscriber(viewer) as subscriber,
        ):
            target = studio.participant_id or ""
            for i in range(runs + 1):  # the first pair of runs warms up (codecs, imports)
                d = await direct_first_frame(relay.subscribe(source, buffered=False), timeout)
                subscription = await subscriber.subscribe(target, timeout=timeout)
                s = subscription.frames.first_frame_s
                await subscription.close()
                await publisher.wait_for_exchanges(0, timeout=timeout)  # runs stay apart
                assert s is not None
                if i:
                    direct.append(d)
                    signaled.append(s)
    source.stop()

    def p(samples: list[float], q: float) -> float:
        return percentile(samples, q)

    return {
        "media_first_frame_ms": {
            "signaling_p50": p(signaled, 50) * 1000,
            "signaling_p99": p(signaled, 99) * 1000,
            "direct_p50": p(direct, 50) * 1000,
            "direct_p99": p(direct, 99) * 1000,
            "signaling_mean": statistics.fmean(signaled) * 1000,
            "direct_mean": statistics.fmean(direct) * 1000,
        },
        "media_first_frame_ratio": {
            "p50": p(signaled, 50) / p(direct, 50),
            "p99": p(signaled, 99) / p(direct, 99),
            "n": len(signaled),
        },
        "media_size": f"{size[0]}x{size[1]}",
    }


# --- subscribers per publisher ---------------------------------------------------------


def run_queue_wait_s(pid: int) -> float:
    """Seconds the threads of ``pid`` have spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            path = f"/proc/{pid}/task/{tid}/schedstat"
            with contextlib.suppress(OSError, IndexError, ValueError), open(path) as stat:
                total += int(stat.read().split()[1])
    return total / 1e9


async def publisher_bot(url: str, secret: str, size: tuple[int, int], workers: int) -> None:
    """The publisher process: publish until stdin closes.

    aiortc encodes each sender's frames in the loop's default executor; its
    size (``workers``; asyncio's default is min(32, CPUs + 4)) bounds how many
    encodes run at once.
    """
    if workers:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(workers))
    async with (
        Session(url, token=mint(secret, ROOM, ttl=3600), name="bot") as session,
        Publisher(session, video=TestPatternTrack(*size)),
    ):
        print(f"READY {session.participant_id}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


async def capacity(
    size: tuple[int, int], steps: list[int], window: float, min_fps: float, pin: bool, workers: int
) -> dict[str, Any]:
    secret = secrets.token_hex(16)
    can_pin = pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    if can_pin:
        os.sched_setaffinity(0, {0})
    rows: list[dict[str, Any]] = []
    async with SignalingServer(secret=secret, sdp_timeout=30) as server:
        argv = [sys.executable, str(Path(__file__)), "_publisher", "--url", server.url]
        argv += ["--secret", secret, "--size", f"{size[0]}x{size[1]}", "--workers", str(workers)]
        bot = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        try:
            if can_pin:
                os.sched_setaffinity(bot.pid, {1})
            assert bot.stdout is not None
            line = (await asyncio.wait_for(bot.stdout.readline(), 30)).decode().split()
            if not line or line[0] != "READY":
                raise RuntimeError(f"the publisher bot did not start: {line}")
            target = line[1]
            for k in steps:
                row = await capacity_step(server.url, secret, target, k, window, bot.pid)
                row["sustained"] = row["min_fps"] >= min_fps
                rows.append(row)
                log(
                    f"{k} subscribers: fps min {row['min_fps']:.1f} median {row['median_fps']:.1f}, "
                    f"publisher CPU {row['publisher_cpu']:.0%}, "
                    f"subscribers CPU {row['subscribers_cpu']:.0%}"
                )
                if not row["sustained"]:
                    break
        finally:
            if bot.stdin is not None:
                bot.stdin.close()
            try:
                await asyncio.wait_for(bot.wait(), 20)
            except TimeoutError:
                bot.kill()
                await bot.wait()
    good = [r["subscribers"] for r in rows if r["sustained"]]
    return {
        "media_capacity": {
            "size": f"{size[0]}x{size[1]}",
            "min_fps": min_fps,
            "window_s": window,
            "pinned": can_pin,
            "executor_workers": workers or min(32, (os.cpu_count() or 1) + 4),
            "max_sustained_subscribers": max(good) if good else 0,
            "steps": rows,
        }
    }


async def capacity_step(
    url: str, secret: str, target: str, k: int, window: float, bot_pid: int
) -> dict[str, Any]:
    sessions = [
        Session(
            url, token=mint(secret, ROOM, ttl=3600), name=f"sub-{k}-{i}", participant_type="viewer"
        )
        for i in range(k)
    ]
    subscribers = [Subscriber(s) for s in sessions]
    try:
        await asyncio.gather(*(s.connect() for s in sessions))
        subs = await asyncio.gather(*(s.subscribe(target, timeout=30) for s in subscribers))
        # Let every connection settle (bitrate, first key frames) before counting.
        await asyncio.sleep(1.0)
        before = [s.frames.video_frames for s in subs]
        cpu_bot, cpu_me, t0 = proc_cpu_s(bot_pid), proc_cpu_s(os.getpid()), time.perf_counter()
        waited = run_queue_wait_s(bot_pid)
        await asyncio.sleep(window)
        elapsed = time.perf_counter() - t0
        waited = (run_queue_wait_s(bot_pid) - waited) / elapsed
        cpu_bot = (proc_cpu_s(bot_pid) - cpu_bot) / elapsed
        cpu_me = (proc_cpu_s(os.getpid()) - cpu_me) / elapsed
        fps = [(s.frames.video_frames - b) / elapsed for s, b in zip(subs, before, strict=True)]
    finally:
        for subscriber in subscribers:
            await subscriber.close()
        for session in sessions:
            await session.close()
    return {
        "subscribers": k,
        "min_fps": min(fps),
        "median_fps": statistics.median(fps),
        "publisher_cpu": cpu_bot,
        "publisher_run_queue_wait": waited,  # seconds per second, summed over its threads
        "subscribers_cpu": cpu_me,
        "load_average": os.getloadavg()[0],
    }


# --- command line ---------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    size = parse_size(args.size)
    if args.only in (None, "first"):
        log(f"first frame: {args.runs} subscriptions through the signaling, {args.runs} direct")
        results.update(await first_frames(args.runs, size, timeout=20))
    if args.only in (None, "capacity"):
        steps = [int(k) for k in args.steps.split(",")]
        log(f"capacity: one publisher bot, {steps} subscribers, {args.window:g} s windows")
        results.update(capacity_result := await capacity(
            parse_size(args.capacity_size), steps, args.window, args.min_fps, not args.no_pin,
            args.workers,
        ))  # fmt: skip
        del capacity_result
    return results


def table(results: dict[str, Any]) -> str:
    out = []
    ratio = results.get("media_first_frame_ratio")
    if ratio:
        ms = results["media_first_frame_ms"]
        verdict = "ok" if ratio["p50"] <= 1.2 else "MISSED"
        out.append(
            f"first decoded frame ({results['media_size']}, n={ratio['n']}): "
            f"through the signaling p50 {ms['signaling_p50']:.1f} ms, p99 {ms['signaling_p99']:.1f} ms; "
            f"direct p50 {ms['direct_p50']:.1f} ms, p99 {ms['direct_p99']:.1f} ms"
        )
        out.append(
            f"media_first_frame_ratio p50 {ratio['p50']:.2f}, p99 {ratio['p99']:.2f} "
            f"(target p50 <= 1.2: {verdict})"
        )
    cap = results.get("media_capacity")
    if cap:
        out.append(
            f"one publisher bot, {cap['size']} at 30 fps: {cap['max_sustained_subscribers']} "
            f"subscribers sustained (every one >= {cap['min_fps']:g} fps)"
        )
        for row in cap["steps"]:
            out.append(
                f"  {row['subscribers']:>3} subscribers: fps min {row['min_fps']:5.1f} "
                f"median {row['median_fps']:5.1f}; CPU publisher {row['publisher_cpu']:4.0%}, "
                f"subscribers+server {row['subscribers_cpu']:4.0%}; publisher waited for a CPU "
                f"{row['publisher_run_queue_wait']:.2f} s/s; load {row['load_average']:.1f}"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    bot = sub.add_parser("_publisher", help=argparse.SUPPRESS)
    bot.add_argument("--url", required=True)
    bot.add_argument("--secret", required=True)
    bot.add_argument("--size", default="320x240")
    bot.add_argument("--workers", type=int, default=0)
    parser.add_argument("--only", choices=["first", "capacity"])
    parser.add_argument("--runs", type=int, default=30, help="subscriptions timed (>= 20)")
    parser.add_argument("--size", default="320x240", help="video size for the first frame")
    parser.add_argument("--capacity-size", default="320x240")
    parser.add_argument("--steps", default="1,2,4,6,8,10,12,16,20,24,32")
    parser.add_argument("--window", type=float, default=4.0, help="seconds counted per step")
    parser.add_argument("--min-fps", type=float, default=28.5, help="sustained: every one >= it")
    parser.add_argument(
        "--workers", type=int, default=0, help="the publisher bot's executor threads (0: asyncio's)"
    )
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    for name in ("aiortc", "aioice", "roomsignal"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if args.command == "_publisher":
        asyncio.run(publisher_bot(args.url, args.secret, parse_size(args.size), args.workers))
        return 0
    results = asyncio.run(run(args))
    print(table(results), flush=True)
    if args.json:
        print(json.dumps(results, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
