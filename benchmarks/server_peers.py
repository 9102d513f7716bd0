"""The bare websockets server the server benchmarks compare the reference server with.

    python benchmarks/server_peers.py broadcast

Binds 127.0.0.1 on port 0, prints ``PORT <n>`` once it listens, and runs
until SIGTERM/SIGINT or until its stdin closes (as ``servers.py`` does).

- ``broadcast``: every text frame a client sends is broadcast, as it is, to
  every other connected client with ``websockets.broadcast`` (the fastest
  fan-out websockets offers: one encode per connection, no awaiting). The
  benchmark sends it the very ``messageReceived`` frames the reference
  server wrote, so both servers put the same bytes on the wire; this one
  does no JSON, no seq, no replay buffer: the floor under ``fanout_ratio``.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["broadcast"])
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, {args.cpu})
    asyncio.run(run_broadcast())


if __name__ == "__main__":
    main()
