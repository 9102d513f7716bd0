"""``roomsignal serve --redis URL``: run the server as one node of a cluster.

Every node of a cluster must share the secret (``--secret`` or
``ROOMSIGNAL_SECRET``) and the Redis URL; docs/scaling.md has the design.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Protocol

from roomsignal.cli._options import CommandError, positive_float
from roomsignal.server._lease import LEASE

if TYPE_CHECKING:
    from roomsignal.server import SignalingServer

__all__ = ["add_cluster_flags", "start_node"]


class Node(Protocol):
    """What ``serve`` closes: a server or a cluster node."""

    async def close(self, graceful: bool = True) -> None: ...


def add_cluster_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--redis``, ``--node-id``, ``--lease`` to ``serve``."""
    group = parser.add_argument_group("cluster (needs roomsignal[redis]; docs/scaling.md)")
    group.add_argument(
        "--redis",
        metavar="URL",
        help="run as one node of a cluster on this Redis (redis://HOST:PORT/DB); "
        "every node needs the same --secret",
    )
    group.add_argument("--node-id", metavar="ID", help="this node's name (default: random)")
    group.add_argument(
        "--lease",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help=f"room lease time to live: a dead node's rooms move after it (default: {LEASE:g})",
    )


async def start_node(server: SignalingServer, args: argparse.Namespace) -> Node:
    """Start ``server`` alone, or as a cluster node when ``--redis`` is given."""
    if not getattr(args, "redis", None):
        await server.start()
        return server
    try:
        import redis  # noqa: F401  (say which extra is missing, before anything starts)

        from roomsignal.server._cluster import Cluster
    except ImportError:
        raise CommandError(
            "--redis needs the redis extra: pip install 'roomsignal[redis]'"
        ) from None
    try:
        lease = LEASE if args.lease is None else args.lease
        cluster = Cluster(server, args.redis, node_id=args.node_id, lease=lease)
        await cluster.start()
    except ConnectionError as exc:
        raise CommandError(str(exc)) from None
    except ValueError as exc:
        raise CommandError(f"bad --redis URL {args.redis!r}: {exc}") from None
    return cluster
