"""``--ca-file`` for the commands that dial a server (``join``, ``load-test``).

Without it a ``wss://`` server is checked against the system's CAs; with
it, against that CA alone (a private CA, a test one made with trustme).
"""

from __future__ import annotations

import argparse
import ssl
from collections.abc import Sequence

from roomsignal.cli._options import UsageError

__all__ = ["add_ca_option", "client_ssl"]


def add_ca_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--ca-file PEM``."""
    parser.add_argument(
        "--ca-file",
        metavar="PEM",
        help="trust this CA (PEM) for a wss:// server, instead of the system's",
    )


def client_ssl(args: argparse.Namespace, url: str | Sequence[str]) -> ssl.SSLContext | None:
    """The client context ``--ca-file`` asks for; None to use the defaults.

    ``url`` is the server's URL, or a list of them (a cluster's nodes).
    Raises ``UsageError`` for a CA file that cannot be read, or one given
    for a ``ws://`` URL.
    """
    ca_file = getattr(args, "ca_file", None)
    if ca_file is None:
        return None
    for one in [url] if isinstance(url, str) else url:
        if not one.lower().startswith("wss://"):
            raise UsageError(f"--ca-file is for a wss:// server, not {one!r}")
    from roomsignal.server._tls import TLSConfigError, client_context

    try:
        return client_context(ca_file)
    except TLSConfigError as exc:
        raise UsageError(str(exc)) from None
