"""Media through a real Janus media node (PROTOCOL.md section 10): the publisher's cost, viewers.

    python benchmarks/sfu.py                  # all three, a table, a few minutes
    python benchmarks/sfu.py --quick --json   # a reduced run, then one JSON object
    python benchmarks/sfu.py --only cpu       # or first, capacity (comma-separated)

A private Janus (``JanusProcess``: 127.0.0.1, no STUN/TURN, this machine's own
addresses) and the reference server driving it run in this process's
machine; the signaling dials only 127.0.0.1 and the peer connections use no
ICE servers.

``cpu``: one publisher bot (320x240 at 30 fps) in its own process; its CPU
per second over a window with 1 subscriber, then with 50, through Janus:
``sfu_publisher_cpu_ratio`` = the second over the first (target <= 1.2).
The same bot peer to peer (no media node) with 1 and with ``--p2p-peers``
subscribers gives ``p2p_publisher_cpu_ratio`` beside it (each peer to peer
subscriber costs the publisher one more encoder).

``capacity``: the same bot through Janus, K subscribers for a ``--window`` of
seconds each step, K growing; a step is sustained when every subscriber
received >= 95 % of the window's video packets (by their RTP sequence
numbers: losses) and received them at >= 95 % of the rate the publisher
sent them (its ``packetsSent``; each side's rate over its own clock: a
backlog growing in Janus or in the kernel shows there). Those subscribers count packets and do not
decode (aiortc's decoder thread is replaced by one that drops the frames):
decoding hundreds of streams is the viewers' machines' work, not the media
node's. They are spread over ``--procs`` processes. ``sfu_subscribers_sustained``
is the largest K sustained (target >= 200).

``first``: the time from ``Subscriber.subscribe()`` to the first decoded video
frame through Janus, against two aiortc peers wired to each other directly
in this process (the floor: offer, answer, ICE, DTLS, the first key frame),
runs alternating: ``sfu_first_frame_ratio`` = p50 over p50 (target <= 1.5).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import queue
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from aiortc.contrib.media import MediaRelay  # noqa: E402
from workloads import percentile, proc_cpu_s  # noqa: E402

from media import direct_first_frame, parse_size  # noqa: E402
from roomsignal import Session  # noqa: E402
from roomsignal.media import Publisher, Subscriber, TestPatternTrack  # noqa: E402
from roomsignal.server import SignalingServer  # noqa: E402
from roomsignal.server._janus_process import JanusProcess  # noqa: E402
from roomsignal.tokens import mint  # noqa: E402

ROOM = "bench-sfu"
SIZE = (320, 240)
FPS = 30.0
TARGETS = {
    "sfu_publisher_cpu_ratio": ("<=", 1.2),
    "sfu_subscribers_sustained": (">=", 200),
    "sfu_first_frame_ratio": ("<=", 1.5),
}


def log(message: str) -> None:
    print(f"[sfu] {message}", file=sys.stderr, flush=True)


def quiet() -> None:
    for name in ("aiortc", "aioice", "roomsignal"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


# --- the publisher bot (its own process) -------------------------------------------------


async def publisher_bot(url: str, secret: str, size: tuple[int, int], fps: float) -> None:
    """Publish until stdin closes; each ``stats`` line on stdin answers its packets sent."""
    async with (
        Session(url, token=mint(secret, ROOM, ttl=3600), name="bot") as session,
        Publisher(session, video=TestPatternTrack(*size, fps=fps)) as publisher,
    ):
        print(f"READY {session.participant_id}", flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            sent = 0
            for pc in publisher.connections.values():
                for stats in (await pc.getStats()).values():
                    if getattr(stats, "type", None) == "outbound-rtp":
                        sent = max(sent, int(getattr(stats, "packetsSent", 0) or 0))
            print(json.dumps({"packets_sent": sent, "at": time.monotonic()}), flush=True)


class Bot:
    """The publisher bot's process, owned by ``async with``."""

    def __init__(
        self, url: str, secret: str, size: tuple[int, int] = SIZE, fps: float = FPS
    ) -> None:
        self.url = url
        self.secret = secret
        self.video = (f"{size[0]}x{size[1]}", f"{fps:g}")
        self.process: asyncio.subprocess.Process | None = None
        self.participant_id = ""

    async def __aenter__(self) -> Bot:
        argv = [sys.executable, str(Path(__file__)), "_publisher", self.url, self.secret]
        argv += list(self.video)
        self.process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        line = (await asyncio.wait_for(self._line(), 30)).split()
        if not line or line[0] != "READY":
            raise RuntimeError(f"the publisher bot did not start: {line}")
        self.participant_id = line[1]
        return self

    async def _line(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        return (await self.process.stdout.readline()).decode()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def packets_sent(self) -> tuple[int, float]:
        """Packets sent so far, and when the bot read the count (its monotonic clock)."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(b"stats\n")
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(self._line(), 10))
        return int(answer["packets_sent"]), float(answer["at"])

    async def __aexit__(self, *exc: object) -> None:
        process = self.process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


# --- subscribers that count packets ---------------------------------------------------------


def _drop_frames(loop: Any, inbox: queue.Queue[Any], outbox: Any, error: Any) -> None:
    """aiortc's decoder thread, replaced: takes each encoded frame and drops it."""
    while inbox.get() is not None:
        pass


async def _count_packet(receiver: Any, packet: Any, arrival_time_ms: int) -> None:
    """aiortc's RTP handling of a receiver, replaced: count the (decrypted) packet, no more.

    Per SSRC: ``[packets, highest extended sequence number, last sequence number]``,
    so that a window's share is its packets over the sequence numbers it spans
    (losses, whatever the delay).
    """
    streams = receiver.__dict__.setdefault("rtp_counts", {})
    seq = packet.sequence_number
    entry = streams.get(packet.ssrc)
    if entry is None:
        streams[packet.ssrc] = [1, seq, seq]
        return
    entry[0] += 1
    cycles = entry[1] - (entry[1] & 0xFFFF)
    if seq < entry[2] and entry[2] - seq > 0x8000:
        cycles += 0x10000  # wrapped
    elif seq > entry[2] and seq - entry[2] > 0x8000:
        cycles -= 0x10000  # a late packet from before the wrap
    entry[1] = max(entry[1], cycles + seq)
    entry[2] = seq


def _main_stream(receivers: Any) -> list[int]:
    """``[packets, highest extended seq]`` of the SSRC with the most packets (the video)."""
    best = [0, 0]
    for receiver in receivers:
        for packets, highest, _ in getattr(receiver, "rtp_counts", {}).values():
            if packets > best[0]:
                best = [packets, highest]
    return best


def counting_only() -> None:
    """Make this process's aiortc receivers count packets instead of reassembling and decoding."""
    import aiortc.rtcrtpreceiver

    aiortc.rtcrtpreceiver.decoder_worker = _drop_frames  # type: ignore[assignment]
    aiortc.rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet = _count_packet  # type: ignore[method-assign]


async def counting_viewers(url: str, secret: str, target: str, k: int, tag: str) -> Any:
    """``k`` viewer sessions subscribed to ``target`` (no decoding); returns (close, count)."""
    sessions = [
        Session(url, token=mint(secret, ROOM, ttl=3600), name=f"v-{tag}-{i}",
                participant_type="viewer")
        for i in range(k)
    ]  # fmt: skip
    subscribers = [Subscriber(s) for s in sessions]
    gate = asyncio.Semaphore(16)

    async def one(session: Session, subscriber: Subscriber) -> Any:
        async with gate:
            await session.connect()
            subscription = await subscriber.subscribe(target, wait=False)
            connected = asyncio.Event()

            def changed() -> None:
                if subscription.pc.connectionState == "connected":
                    connected.set()

            subscription.pc.on("connectionstatechange", changed)
            changed()
            await asyncio.wait_for(connected.wait(), 60)
            return subscription

    subscriptions = await asyncio.gather(
        *(one(s, u) for s, u in zip(sessions, subscribers, strict=True))
    )

    async def received() -> list[list[int]]:
        # Read at once, with no await: counts read one by one would drift apart in time.
        return [_main_stream(s.pc.getReceivers()) for s in subscriptions]

    async def close() -> None:
        for subscriber in subscribers:
            await subscriber.close()
        for session in sessions:
            await session.close()

    return close, received


async def viewer_worker(url: str, secret: str, target: str, k: int, tag: str) -> None:
    """A subscribers process: ``count`` lines on stdin answer the packets each one received.

    Each answer is ``[when, counts]``, ``when`` read with the counts (this
    process's monotonic clock): rates come from this process's own times,
    however late its answer arrives.
    """
    counting_only()
    close, received = await counting_viewers(url, secret, target, k, tag)
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            counts = await received()
            print(json.dumps([time.monotonic(), counts]), flush=True)
    finally:
        await close()


class Viewers:
    """``k`` counting subscribers spread over ``procs`` processes."""

    def __init__(self, url: str, secret: str, target: str, k: int, procs: int) -> None:
        self.args = (url, secret, target)
        self.shares = [k // procs + (1 if i < k % procs else 0) for i in range(procs)]
        self.processes: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Viewers:
        url, secret, target = self.args
        for i, share in enumerate(s for s in self.shares if s):
            argv = [sys.executable, str(Path(__file__)), "_viewers", url, secret, target]
            argv += [str(share), f"{i}-{secrets.token_hex(3)}"]
            self.processes.append(
                await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
                )
            )
        for process in self.processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 180)
            if line.strip() != b"READY":
                raise RuntimeError(f"a viewers process did not start ({line!r})")
        return self

    def cpu_s(self) -> float:
        """CPU seconds used so far by the subscribers' processes."""
        return sum(proc_cpu_s(p.pid) for p in self.processes)

    async def received(self) -> list[tuple[float, list[int]]]:
        """Per subscriber: when its process read them, its packets and highest sequence number."""
        counts: list[tuple[float, list[int]]] = []
        for process in self.processes:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(b"count\n")
        for process in self.processes:
            assert process.stdout is not None
            at, got = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
            counts += [(at, n) for n in got]
        return counts

    async def __aexit__(self, *exc: object) -> None:
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


# --- the three measures -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def media_server(janus: JanusProcess | None) -> Any:
    secret = secrets.token_hex(16)
    extra = {"media_node": janus.url} if janus is not None else {}
    async with SignalingServer(secret=secret, sdp_timeout=30, **extra) as server:
        yield server, secret


async def cpu_window(bot: Bot, window: float) -> float:
    """The bot's CPU seconds per second over ``window``."""
    await asyncio.sleep(1.0)  # let bitrate and key frames settle
    before, t0 = proc_cpu_s(bot.pid), time.perf_counter()
    await asyncio.sleep(window)
    return (proc_cpu_s(bot.pid) - before) / (time.perf_counter() - t0)


async def publisher_cpu(janus: JanusProcess | None, many: int, window: float) -> dict[str, float]:
    """The bot's CPU per second with 1 subscriber, then with ``many``."""
    out: dict[str, float] = {}
    async with media_server(janus) as (server, secret), Bot(server.url, secret) as bot:
        for k in (1, many):
            async with Viewers(server.url, secret, bot.participant_id, k, 1 if k < 8 else 2):
                out[str(k)] = await cpu_window(bot, window)
            log(f"{'sfu' if janus else 'p2p'}: {k} subscriber(s): publisher CPU {out[str(k)]:.0%}")
    return out


async def capacity(
    janus: JanusProcess,
    steps: list[int],
    window: float,
    procs: int,
    size: tuple[int, int],
    fps: float,
) -> Any:
    rows = []
    async with media_server(janus) as (server, secret), Bot(server.url, secret, size, fps) as bot:
        for k in steps:
            started = time.perf_counter()
            try:
                async with Viewers(server.url, secret, bot.participant_id, k, procs) as viewers:
                    setup = time.perf_counter() - started
                    await asyncio.sleep(1.0)
                    # Both ends read at once, each time: the window is the same for both.
                    sent0, got0 = await asyncio.gather(bot.packets_sent(), viewers.received())
                    cpu0, t0 = proc_cpu_s(bot.pid), time.perf_counter()
                    node0, viewers0 = proc_cpu_s(janus.pid), viewers.cpu_s()
                    await asyncio.sleep(window)
                    sent1, got1 = await asyncio.gather(bot.packets_sent(), viewers.received())
                    elapsed = time.perf_counter() - t0
                    cpu = (proc_cpu_s(bot.pid) - cpu0) / elapsed
                    node_cpu = (proc_cpu_s(janus.pid) - node0) / elapsed
                    viewers_cpu = (viewers.cpu_s() - viewers0) / elapsed
            except (RuntimeError, TimeoutError) as exc:
                log(f"{k} subscribers: could not set up ({exc!r})")
                rows.append({"subscribers": k, "sustained": False, "error": repr(exc)})
                break
            # Rates, each over its own process's clock: a count answered late by a busy
            # process still covers the window it says (the machine is shared).
            (sent_a, at_a), (sent_b, at_b) = sent0, sent1
            sent = max(1, sent_b - sent_a)
            rate = sent / (at_b - at_a)
            pairs = list(zip(got0, got1, strict=True))
            # Received of what was sent over the window, by sequence numbers: losses.
            shares = [(b[0] - a[0]) / max(1, b[1] - a[1]) for (_, a), (_, b) in pairs]
            # And the rate received over the rate sent: < 1 while a backlog builds.
            rates = [(b[0] - a[0]) / (tb - ta) / rate for (ta, a), (tb, b) in pairs]
            row = {
                "subscribers": k,
                "setup_s": setup,
                "packets_sent": sent,
                "min_share": min(shares),
                "median_share": statistics.median(shares),
                "min_rate_share": min(rates),
                "median_rate_share": statistics.median(rates),
                "publisher_cpu": cpu,
                "janus_cpu": node_cpu,
                "subscribers_cpu": viewers_cpu,
                "load_average": os.getloadavg()[0],
                # Every packet of the window arrived (>= 95 %), and in time: a subscriber
                # whose packets come late, a backlog growing, is not served either.
                "sustained": min(shares) >= 0.95 and min(rates) >= 0.95,
            }
            rows.append(row)
            log(
                f"{k} subscribers: every one got >= {row['min_share']:.1%} of "
                f"{sent} packets (median {row['median_share']:.1%}; rate received / sent "
                f"{row['min_rate_share']:.0%} to {max(rates):.0%}); CPU: publisher {cpu:.0%}, "
                f"Janus {node_cpu:.0%}, subscribers {viewers_cpu:.0%}; set up in {setup:.1f} s; "
                f"load average {row['load_average']:.1f}"
            )
            if not row["sustained"]:
                break
    good = [r["subscribers"] for r in rows if r["sustained"]]
    return max(good) if good else 0, rows


async def first_frames(janus: JanusProcess, runs: int, timeout: float = 20.0) -> dict[str, Any]:
    through: list[float] = []
    direct: list[float] = []
    source = TestPatternTrack(*SIZE, fps=FPS)
    relay = MediaRelay()
    async with media_server(janus) as (server, secret):
        studio = Session(server.url, token=mint(secret, ROOM, ttl=3600), name="studio")
        viewer = Session(
            server.url, token=mint(secret, ROOM, ttl=3600), name="viewer", participant_type="viewer"
        )
        async with (
            studio,
            viewer,
            Publisher(studio, video=TestPatternTrack(*SIZE, fps=FPS)) as publisher,
            Subscriber(viewer) as subscriber,
        ):
            await publisher.wait_for_connected(1, timeout=timeout)
            target = studio.participant_id or ""
            for i in range(runs + 1):  # the first pair of runs warms up
                d = await direct_first_frame(relay.subscribe(source, buffered=False), timeout)
                subscription = await subscriber.subscribe(target, timeout=timeout)
                s = subscription.frames.first_frame_s
                await subscription.close()
                assert s is not None
                if i:
                    direct.append(d)
                    through.append(s)
    source.stop()
    return {
        "sfu_first_frame_ms": {
            "janus_p50": percentile(through, 50) * 1000,
            "janus_p99": percentile(through, 99) * 1000,
            "direct_p50": percentile(direct, 50) * 1000,
            "direct_p99": percentile(direct, 99) * 1000,
            "n": len(through),
        },
        "sfu_first_frame_ratio": percentile(through, 50) / percentile(direct, 50),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.only.split(",")) if args.only else {"cpu", "capacity", "first"}
    results: dict[str, Any] = {
        "reduced": args.quick,
        "video": f"{SIZE[0]}x{SIZE[1]} at {FPS:g} fps",
    }
    async with JanusProcess(event_loops=args.event_loops, debug_level=1) as janus:
        if "first" in only:
            runs = 8 if args.quick else 20
            log(f"first frame: {runs} subscriptions through Janus, {runs} direct pairs")
            results.update(await first_frames(janus, runs))
        if "cpu" in only:
            window = 3.0 if args.quick else 5.0
            sfu = await publisher_cpu(janus, 50, window)
            p2p = await publisher_cpu(None, args.p2p_peers, window)
            results["sfu_publisher_cpu"] = sfu
            results["sfu_publisher_cpu_ratio"] = sfu["50"] / sfu["1"]
            results["p2p_publisher_cpu"] = p2p
            results["p2p_publisher_cpu_ratio"] = p2p[str(args.p2p_peers)] / p2p["1"]
            results["p2p_subscribers"] = args.p2p_peers
        if "capacity" in only:
            steps = [int(k) for k in args.steps.split(",")]
            window = args.window
            size = parse_size(args.capacity_size)
            log(
                f"capacity: {steps} counting subscribers of {args.capacity_size} at "
                f"{args.capacity_fps:g} fps, {window:g} s windows, {args.procs} procs"
            )
            best, rows = await capacity(janus, steps, window, args.procs, size, args.capacity_fps)
            results["sfu_subscribers_sustained"] = best
            results["sfu_capacity"] = {
                "window_s": window,
                "procs": args.procs,
                "video": f"{args.capacity_size} at {args.capacity_fps:g} fps",
                "steps": rows,
            }
    targets = {}
    for key, (op, threshold) in TARGETS.items():
        value = results.get(key)
        passed = (
            None if value is None else (value <= threshold if op == "<=" else value >= threshold)
        )
        targets[key] = {"target": f"{op} {threshold:g}", "value": value, "pass": passed}
    results["sfu_targets"] = targets
    return results


def table(results: dict[str, Any]) -> str:
    out = [
        f"media through Janus, {results['video']}{' (reduced run)' if results['reduced'] else ''}"
    ]
    for key, target in results["sfu_targets"].items():
        value = target["value"]
        shown = (
            "n/a" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)
        )
        verdict = {True: "ok", False: "MISSED", None: "-"}[target["pass"]]
        out.append(f"  {key:<28} {shown:>8}  (target {target['target']}: {verdict})")
    if "p2p_publisher_cpu_ratio" in results:
        out.append(
            f"  {'p2p_publisher_cpu_ratio':<28} {results['p2p_publisher_cpu_ratio']:>8.2f}"
            f"  (peer to peer, {results['p2p_subscribers']} subscribers / 1, beside it)"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    bot = sub.add_parser("_publisher", help=argparse.SUPPRESS)
    bot.add_argument("url")
    bot.add_argument("secret")
    bot.add_argument("size")
    bot.add_argument("fps", type=float)
    viewers = sub.add_parser("_viewers", help=argparse.SUPPRESS)
    for name in ("url", "secret", "target"):
        viewers.add_argument(name)
    viewers.add_argument("k", type=int)
    viewers.add_argument("tag")
    parser.add_argument("--only", default=None, help="comma-separated: first,cpu,capacity")
    parser.add_argument("--quick", action="store_true", help="a reduced run (say so in reports)")
    parser.add_argument("--steps", default="100,150,200,250,300")
    parser.add_argument("--window", type=float, default=20.0, help="seconds counted per step")
    parser.add_argument("--procs", type=int, default=2, help="processes holding the subscribers")
    parser.add_argument("--capacity-size", default="320x240", help="the capacity bot's video")
    parser.add_argument("--capacity-fps", type=float, default=FPS)
    parser.add_argument(
        "--event-loops",
        type=int,
        default=None,
        help="Janus's event_loops (0: a thread per handle; default: JanusProcess's, one a core)",
    )
    parser.add_argument("--p2p-peers", type=int, default=8, help="peer to peer subscribers")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    quiet()
    if args.command == "_publisher":
        asyncio.run(publisher_bot(args.url, args.secret, parse_size(args.size), args.fps))
        return 0
    if args.command == "_viewers":
        asyncio.run(viewer_worker(args.url, args.secret, args.target, args.k, args.tag))
        return 0
    results = asyncio.run(run(args))
    print(table(results), flush=True)
    if args.json:
        print(json.dumps(results, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
