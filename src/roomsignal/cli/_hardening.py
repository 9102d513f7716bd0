"""The ``roomsignal serve`` flags of the hostile-load limits (docs/protocol.md "Server limits").

One table gives each flag, its ``SignalingServer`` keyword, type, default and
help; ``add_hardening_flags`` adds them to the ``limits`` group and
``hardening_kwargs`` reads them back, so ``_serve.py`` changes by two lines.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from roomsignal.cli._options import non_negative_int, positive_float
from roomsignal.server._config import ServerConfig

__all__ = ["add_hardening_flags", "hardening_kwargs"]

_DEFAULTS = ServerConfig()

# keyword, parse, metavar, help (the default is appended from ServerConfig)
_FLAGS: tuple[tuple[str, Callable[[str], Any], str, str], ...] = (
    ("max_send_queue_bytes", non_negative_int, "BYTES",
     "unsent output per connection before it is closed with 4002 (slow)"),
    ("replay_buffer_bytes", non_negative_int, "BYTES",
     "bytes of notifications kept per participant for a resume"),
    ("max_participants", non_negative_int, "N",
     "members per session, any type; 0 = no limit; over it a join gets 206"),
    ("max_name_bytes", non_negative_int, "BYTES", "largest join name"),
    ("max_metadata_bytes", non_negative_int, "BYTES", "largest join metadata (as JSON)"),
    ("max_session_metadata_bytes", non_negative_int, "BYTES",
     "metadata of all members of one session together"),
    ("max_text_bytes", non_negative_int, "BYTES", "largest chat text"),
    ("max_sdp_bytes", non_negative_int, "BYTES", "largest sdp"),
    ("max_candidate_bytes", non_negative_int, "BYTES", "largest ICE candidate"),
    ("max_held_ice_bytes", non_negative_int, "BYTES",
     "ICE candidate bytes held per exchange before its offer"),
    ("join_timeout", positive_float, "SECONDS", "a connection that has not joined by then is closed"),
    ("max_connections", non_negative_int, "N",
     "connections at once; over it the handshake gets HTTP 503; 0 = no limit"),
    ("max_fanout_per_second", non_negative_int, "N",
     "frames one connection's requests may make the server write per second; 0 = no limit"),
)  # fmt: skip


def add_hardening_flags(group: Any) -> None:
    """Add one ``--flag`` per limit of ``_FLAGS`` to an argparse group."""
    for keyword, parse, metavar, text in _FLAGS:
        default = getattr(_DEFAULTS, keyword)
        group.add_argument(
            "--" + keyword.replace("_", "-"),
            dest=keyword,
            type=parse,
            default=default,
            metavar=metavar,
            help=f"{text} (default: {default})",
        )


def hardening_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ``SignalingServer`` keywords of those flags."""
    return {keyword: getattr(args, keyword) for keyword, *_ in _FLAGS}
