"""The bare websockets server the server benchmarks compare the reference server with.

    python benchmarks/server_peers.py broadcast
    python benchmarks/server_peers.py ref --secret S [--max-fanout N] [--max-sessions N]

Binds 127.0.0.1 on port 0, prints ``PORT <n>`` once it listens, and runs
until SIGTERM/SIGINT or until its stdin closes (as ``servers.py`` does).

- ``broadcast``: every text frame a client sends is broadcast, as it is, to
  every other connected client with ``websockets.broadcast`` (the fastest
  fan-out websockets offers: one encode per connection, no awaiting). The
  benchmark sends it the very ``messageReceived`` frames the reference
  server wrote, so both servers put the same bytes on the wire; this one
  does no JSON, no seq, no replay buffer: the floor under ``fanout_ratio``.
- ``ref``: the reference server as ``servers.py ref`` starts it, but with
  its per-sender fan-out pacing (``max_fanout_per_second``, 50,000 frames/s
  by default) set by ``--max-fanout`` (0: off), so that ``fanout_ratio``
  measures what the server can deliver rather than the cap it is told to
  keep.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

from servers import _announce, _select_subprotocol, _wait_for_stop
from websockets.asyncio.server import ServerConnection, broadcast, serve


async def run_broadcast() -> None:
    members: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        members.add(ws)
        try:
            async for frame in ws:
                broadcast((m for m in members if m is not ws), frame)
        finally:
            members.discard(ws)

    async with serve(
        handler,
        "127.0.0.1",
        0,
        compression=None,
        select_subprotocol=_select_subprotocol,
        max_size=None,
        max_queue=None,
    ) as server:
        _announce(server.sockets[0].getsockname()[1])
        await _wait_for_stop()


async def run_ref(args: argparse.Namespace) -> None:
    from roomsignal.server import SignalingServer

    async with SignalingServer(
        host="127.0.0.1",
        port=0,
        secret=args.secret,
        max_sessions=args.max_sessions,
        max_fanout_per_second=args.max_fanout,
        **(
            {"metrics": True} if args.metrics else {}
        ),  # absent from older servers (metrics_cost.py)
    ) as server:
        _announce(server.port)
        await _wait_for_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["broadcast", "ref"])
    parser.add_argument("--secret", default="bench-secret")
    parser.add_argument("--max-fanout", type=int, default=0, help="frames/s per sender; 0: off")
    parser.add_argument("--max-sessions", type=int, default=20_000)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    parser.add_argument("--metrics", action="store_true", help="serve GET /metrics (ref)")
    args = parser.parse_args()
    if args.cpu is not None:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, {args.cpu})
    asyncio.run(run_broadcast() if args.kind == "broadcast" else run_ref(args))


if __name__ == "__main__":
    main()
