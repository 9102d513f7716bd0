"""Soak under node deaths: ``roomsignal load-test`` on three nodes while ``kill -9`` hits them.

Starts a redis-server (no persistence) and three ``roomsignal serve --redis``
nodes on fixed loopback ports, runs ``roomsignal load-test`` with all three
URLs (its bots spread over them and fail over to the others), and while the
bots chat, every few seconds sends ``kill -9`` to a random node, homes
included, and starts it again on its port (under a new node ID, as a
restarted process gets). Redis lives throughout, so every reconnection
should be a resume. Reported, from the load test's own count of every
message the app sent (confirmed or not):

- deliveries lost, duplicated, out of order (target 0, 0, 0);
- state resets while Redis lives (target 0);
- how long each member needed to be back: from its first reconnection
  attempt, and from the kill that broke it (p50, p99);
- kills, and how many of them hit a room's home.

``python benchmarks/soak.py [--kills 20] [--every 3] [--json]``: bounded
(the run stops by itself), loopback only, every process it starts is
stopped by its pid. The last line with ``--json`` is the result as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from roomsignal._processes import stop_process

SECRET = "soak-benchmark-secret-0123456789abcdef"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
LEASE = 1.5  # seconds: a dead home's rooms move after about 4/3 of it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_port(port: int, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(0.02)


async def stop(process: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> None:
    await stop_process(process, 10, sig)


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[str]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        REDIS_SERVER,
        *("--save", "", "--appendonly", "no", "--port", str(port), "--bind", "127.0.0.1"),
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        await stop(process, signal.SIGKILL)


class Slot:
    """One node's port; the process on it is killed and started again."""

    def __init__(self, index: int, redis_url: str) -> None:
        self.index = index
        self.port = free_port()
        self.redis_url = redis_url
        self.process: asyncio.subprocess.Process | None = None
        self.node_id = ""
        self.starts = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.starts += 1
        self.node_id = f"n{self.index}-{self.starts}"
        self.process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "roomsignal", "serve", "--redis", self.redis_url),
            *("--port", str(self.port), "--secret", SECRET, "--node-id", self.node_id),
            *("--lease", str(LEASE), "--no-web", "--log-level", "error"),
            stdout=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        await wait_port(self.port)

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        if self.process is not None:
            await stop(self.process)


async def homes(redis_url: str) -> dict[str, int]:
    """How many rooms each node homes (the ``P:home:*`` leases)."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        counts: dict[str, int] = {}
        async for key in client.scan_iter("roomsignal:home:*"):
            value = await client.get(key)
            if value is not None:
                node = bytes(value).decode()
                counts[node] = counts.get(node, 0) + 1
        return counts
    finally:
        await client.aclose()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    kills: list[dict[str, Any]] = []
    async with redis_server() as redis_url:
        slots = [Slot(i, redis_url) for i in (1, 2, 3)]
        await asyncio.gather(*(slot.start() for slot in slots))
        joins = args.participants / args.rate
        # long enough for every kill, its restart (a second or two here) and a calm end
        duration = joins + 4 * args.every + args.kills * (args.every + 3)
        load = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "roomsignal", "load-test", *(s.url for s in slots)),
            *("--secret", SECRET, "--rooms", str(args.rooms)),
            *("--participants", str(args.participants), "--rate", str(args.rate)),
            *("--duration", f"{duration:.0f}", "--message-rate", str(args.message_rate)),
            *("--timeout", "15", "--json", "--seed", str(args.seed)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await asyncio.sleep(joins + 2 * args.every)  # the joins, then a calm start
            for _ in range(args.kills):
                if load.returncode is not None:
                    break
                slot = rng.choice(slots)
                held = await homes(redis_url)
                kills.append(
                    {"at": time.time(), "node": slot.node_id, "rooms": held.get(slot.node_id, 0)}
                )
                slot.kill()
                assert slot.process is not None
                await slot.process.wait()
                await asyncio.sleep(rng.uniform(0.2, 1.0))  # down a moment, then back
                await slot.start()
                await asyncio.sleep(max(0.5, args.every + rng.uniform(-1, 1)))
            stopped = time.time()
            async with asyncio.timeout(duration + 120):
                out, err = await load.communicate()
            calm = time.time() - stopped  # the chat went on this long after the last kill
        finally:
            if load.returncode is None:
                load.kill()
                await load.wait()
            await asyncio.gather(*(slot.stop() for slot in slots))
    lines = out.decode().splitlines()
    if load.returncode not in (0, 1) or not lines:
        raise RuntimeError(f"load-test failed ({load.returncode}): {err.decode()[-2000:]}")
    report = json.loads(lines[-1])
    messages = report["messages"]
    spans = report["reconnect_spans"]
    kill_times = sorted(k["at"] for k in kills)
    away = [back - down for down, back in spans]
    since_kill = []
    for down, back in spans:
        before = [t for t in kill_times if t <= down]
        if before and down - before[-1] < 10:
            since_kill.append(back - before[-1])
    result = {
        "nodes": 3,
        "lease_s": LEASE,
        "bots": args.participants,
        "rooms": args.rooms,
        "kills": len(kills),
        "kills_of_a_home": sum(1 for k in kills if k["rooms"] > 0),
        "calm_after_last_kill_s": round(calm, 1),
        "messages_sent": messages["sent"],
        "unconfirmed": messages["unconfirmed"],
        "delivered": messages["delivered"],
        "lost": messages["lost_any"],
        "lost_confirmed": messages["lost"],
        "duplicated": messages["duplicated"],
        "out_of_order": messages["out_of_order"],
        "reconnections": report["reconnections"],
        "resumed": report["resumed"],
        "state_resets": report["state_resets"],
        "back_from_drop_s_p50": _r(pct(away, 0.5)),
        "back_from_drop_s_p99": _r(pct(away, 0.99)),
        "back_from_kill_s_p50": _r(pct(since_kill, 0.5)),
        "back_from_kill_s_p99": _r(pct(since_kill, 0.99)),
        "back_from_kill_s_mean": _r(statistics.fmean(since_kill) if since_kill else None),
        "errors": report["errors"],
        "joined": report["joined"],
        "drained": report["drained"],
        "load_test_ok": report["ok"],
    }
    return result


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="kill -9 this many times (20)")
    parser.add_argument("--every", type=float, default=3.0, help="seconds between kills (3)")
    parser.add_argument("--participants", type=int, default=30)
    parser.add_argument("--rooms", type=int, default=6)
    parser.add_argument("--rate", type=float, default=30.0, help="joins per second")
    parser.add_argument("--message-rate", type=float, default=4.0, help="per room per second")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--json", action="store_true", help="print the result as JSON last")
    args = parser.parse_args()
    if not os.path.exists(REDIS_SERVER):
        print(f"{REDIS_SERVER} is missing (apt-get install redis-server)", file=sys.stderr)
        return 2
    result = asyncio.run(soak(args))
    for key, value in result.items():
        print(f"{key:<28} {value}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
