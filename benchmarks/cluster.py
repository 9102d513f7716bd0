"""The cluster on Redis (docs/scaling.md): latency across nodes, joins per node, Redis round trips.

Starts a redis-server (``--save "" --appendonly no``) on a free port and
three ``roomsignal serve --redis`` nodes as subprocesses, then measures, in
one run so that the machine's load is shared by both sides of each ratio:

- notification latency: a ``sendMessage`` until the listener's
  ``messageReceived``, both parties on the room's home (one node) against
  both on other nodes (relayed twice through Redis); the ratio p50/p50;
- joins per second per node: concurrent fresh joins (new rooms) on one node
  alone, then on the three nodes at once;
- Redis commands per relayed request, from ``INFO commandstats``
  (``publish`` and ``eval*`` calls, minus the beats counted over the same
  idle time), and the commands the scripts run inside Redis (the room's
  journal: docs/scaling.md, "Takeover"), which cost Redis work but no
  round trip.

``python benchmarks/cluster.py [--json] [--messages N] [--joins N]``; the
last line with ``--json`` is the result as JSON (benchmarks/run.py --only cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from roomsignal.tokens import mint

SECRET = "cluster-bench-secret-0123456789abcdef"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        REDIS_SERVER,
        *("--save", "", "--appendonly", "no", "--port", str(port), "--bind", "127.0.0.1"),
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(10):
            while True:
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                await asyncio.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        await proc.wait()


@contextlib.asynccontextmanager
async def nodes(redis_url: str, count: int) -> AsyncIterator[list[tuple[str, str]]]:
    """(node id, ws url) of ``count`` nodes."""
    procs = []
    found: list[tuple[str, str]] = []
    try:
        for i in range(count):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "roomsignal", "serve", "--redis", redis_url, "--port", "0"),
                *("--secret", SECRET, "--node-id", f"b{i}", "--no-web", "--log-level", "warning"),
                *("--max-sessions", "100000", "--max-connections", "100000"),
                stdout=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            procs.append(proc)
        for i, proc in enumerate(procs):
            assert proc.stdout is not None
            while True:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    raise RuntimeError("a node exited before listening")
                if line.startswith("listening on "):
                    found.append((f"b{i}", line.split()[2]))
                    break
        yield found
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            try:  # a node must exit on SIGTERM; if one does not, it is not left behind
                await asyncio.wait_for(asyncio.shield(proc.wait()), 15)
            except TimeoutError:
                print(f"node {proc.pid} ignored SIGTERM: killed", file=sys.stderr, flush=True)
                proc.kill()
                await proc.wait()


async def call(ws: ClientConnection, rid: int, method: str, **params: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
    while True:
        frame = json.loads(await ws.recv())
        if frame.get("id") == rid:
            if "error" in frame:
                raise RuntimeError(f"{method}: {frame['error']}")
            return dict(frame["result"])


async def dial(url: str) -> ClientConnection:
    return await connect(url, subprotocols=["roomsignal.v1"], compression=None)  # type: ignore[list-item]


async def latency(
    talker_url: str, listener_url: str, room: str, count: int, tag: str
) -> list[float]:
    """Seconds from each sendMessage to the listener's messageReceived, one at a time."""
    talker, listener = await dial(talker_url), await dial(listener_url)
    try:
        await call(talker, 1, "join", token=mint(SECRET, room), name=f"talker-{tag}")
        await call(listener, 1, "join", token=mint(SECRET, room), name=f"listener-{tag}")
        out = []
        for i in range(count):
            sent = time.perf_counter()
            request = {"jsonrpc": "2.0", "id": i + 2, "method": "sendMessage"}
            await talker.send(json.dumps({**request, "params": {"text": str(i)}}))
            async with asyncio.timeout(10):
                while True:
                    frame = json.loads(await listener.recv())
                    if frame.get("method") == "messageReceived":
                        break
                out.append(time.perf_counter() - sent)
                while json.loads(await talker.recv()).get("id") != i + 2:
                    pass
        return out
    finally:
        await talker.close()
        await listener.close()


async def joins(url: str, count: int, tag: str) -> float:
    """Fresh joins (each to its own new room) per second, ``count`` connections at once."""
    conns = await asyncio.gather(*(dial(url) for _ in range(count)))
    try:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                call(ws, 1, "join", token=mint(SECRET, f"{tag}-{i}"), name="j")
                for i, ws in enumerate(conns)
            )
        )
        return count / (time.perf_counter() - start)
    finally:
        await asyncio.gather(*(ws.close() for ws in conns))


async def command_calls(redis_url: str) -> dict[str, int]:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


async def home_of(redis_url: str, room: str) -> str:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        value = await client.get(f"roomsignal:home:{room}")
    finally:
        await client.aclose()
    return bytes(value or b"").decode()


def relayed_calls(before: dict[str, int], after: dict[str, int]) -> int:
    keys = ("publish", "eval", "evalsha")
    return sum(after.get(k, 0) - before.get(k, 0) for k in keys)


_CLIENT_SIDE = (
    "publish",
    "eval",
    "evalsha",
    "info",
    "ping",
    "hello",
    "subscribe",
    "client|setinfo",
)


def script_calls(before: dict[str, int], after: dict[str, int]) -> int:
    """Commands run inside the scripts (GET, HSET, XADD...): Redis work, no round trip."""
    return sum(v - before.get(k, 0) for k, v in after.items() if k not in _CLIENT_SIDE)


async def measure(messages: int, join_count: int) -> dict[str, Any]:
    async with redis_server() as redis_url, nodes(redis_url, 3) as started:
        urls = dict(started)
        # place the room: the first join decides its home
        first = await dial(started[0][1])
        try:
            await call(first, 1, "join", token=mint(SECRET, "lat"), name="anchor")
            home = await home_of(redis_url, "lat")
            others = [u for n, u in started if n != home]
            await latency(urls[home], urls[home], "lat", 20, "w")  # warm up
            local = await latency(urls[home], urls[home], "lat", messages, "l")
            relayed = await latency(others[0], others[1], "lat", messages, "r")
            # Redis round trips per relayed request: sendMessage from an edge to
            # the home, fanned out to one listener on another edge.
            idle_before = await command_calls(redis_url)
            t0 = time.perf_counter()
            await asyncio.sleep(1.0)
            idle_after = await command_calls(redis_url)
            idle_spent = time.perf_counter() - t0
            idle = relayed_calls(idle_before, idle_after) / idle_spent
            idle_inner = script_calls(idle_before, idle_after) / idle_spent
            before = await command_calls(redis_url)
            t0 = time.perf_counter()
            await latency(others[0], others[1], "lat", messages, "c")
            spent = time.perf_counter() - t0
            after = await command_calls(redis_url)
            calls = relayed_calls(before, after) - idle * spent
            inner = script_calls(before, after) - idle_inner * spent
        finally:
            await first.close()
        # joins per second per node
        alone = await joins(started[0][1], join_count, "alone")
        together = await asyncio.gather(
            *(joins(url, join_count, f"all{i}") for i, (_, url) in enumerate(started))
        )
    p50_local, p50_relayed = statistics.median(local), statistics.median(relayed)
    return {
        "messages": messages,
        "latency_one_node_p50_us": round(p50_local * 1e6, 1),
        "latency_across_nodes_p50_us": round(p50_relayed * 1e6, 1),
        "latency_across_nodes_p99_us": round(statistics.quantiles(relayed, n=100)[98] * 1e6, 1),
        "latency_ratio_p50": round(p50_relayed / p50_local, 2),
        "joins_per_s_one_node": round(alone, 1),
        "joins_per_s_per_node_three_at_once": [round(x, 1) for x in together],
        "redis_calls_per_relayed_request": round(calls / (messages + 2), 2),
        "redis_commands_in_scripts_per_relayed_request": round(inner / (messages + 2), 2),
        "redis_idle_calls_per_s": round(idle, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON last")
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--joins", type=int, default=300)
    args = parser.parse_args()
    if not os.path.exists(REDIS_SERVER):
        print(json.dumps({"error": f"{REDIS_SERVER} is missing"}))
        return 1
    result = asyncio.run(asyncio.wait_for(measure(args.messages, args.joins), 240))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:40} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
