"""Options several commands share: the secret, numbers that must be positive.

``UsageError`` is bad input found after parsing (a missing secret, say):
``main`` prints it as one line and exits 2; ``CommandError`` is a failure
the user can act on (a port in use), printed the same way, exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import socket
from collections.abc import Awaitable
from typing import Any

__all__ = [
    "SECRET_ENV",
    "CommandError",
    "UsageError",
    "add_secret_option",
    "bind_host",
    "non_negative_float",
    "non_negative_int",
    "port_number",
    "positive_float",
    "resolve_secret",
    "unless",
    "weak_secret_note",
]

SECRET_ENV = "ROOMSIGNAL_SECRET"


class CommandError(Exception):
    """A command failed for a reason the user can act on: one line on stderr, exit 1."""


class UsageError(CommandError):
    """Bad input found after argparse: one line on stderr, exit status 2."""


def add_secret_option(parser: argparse.ArgumentParser) -> None:
    """``--secret``, defaulting to the ``ROOMSIGNAL_SECRET`` environment variable."""
    parser.add_argument(
        "--secret",
        default=None,
        help=f"the HS256 secret that signs the tokens (default: ${SECRET_ENV})",
    )


def resolve_secret(args: argparse.Namespace) -> str | None:
    """The secret from ``--secret`` or the environment; None if neither is set."""
    secret: str | None = args.secret or os.environ.get(SECRET_ENV) or None
    return secret


def weak_secret_note(secret: str) -> str | None:
    """A one-line note when ``secret`` is too short for HS256 (RFC 7518 3.2), else None."""
    if len(secret.encode()) >= 32:
        return None
    return (
        f"note: the secret is {len(secret.encode())} bytes; "
        "HS256 wants at least 32 (fine for a test, weak for production)"
    )


def _number(kind: type[int] | type[float], text: str, minimum: float, strict: bool) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or (value <= minimum if strict else value < minimum):
        bound = "greater than" if strict else "at least"
        raise argparse.ArgumentTypeError(f"must be {bound} {minimum:g}: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    return int(_number(int, text, 0, strict=False))


def non_negative_float(text: str) -> float:
    """argparse type: a float >= 0."""
    return float(_number(float, text, 0, strict=False))


def positive_float(text: str) -> float:
    """argparse type: a float > 0."""
    return float(_number(float, text, 0, strict=True))


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0 (any free port) to 65535."""
    value = non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return value


def bind_host(text: str) -> str:
    """argparse type: an address to bind, decided without asking DNS.

    An IP address (``127.0.0.1``, ``0.0.0.0``, ``::1``, ``[::]``), or a name
    this machine gives itself (``localhost``, its host name); anything else
    (``256.1.1.1``, another machine's name) is refused before any lookup,
    so no query leaves the machine.
    """
    host = text.strip()
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        pass
    own = {"localhost", socket.gethostname().lower()}  # gethostname asks the kernel only
    if host.lower() in own:
        return host
    raise argparse.ArgumentTypeError(
        f"not an IP address nor a name of this machine: {text!r} "
        f"(give an address such as 127.0.0.1, 0.0.0.0 or ::1, or one of: {', '.join(sorted(own))})"
    )


async def unless(main: Awaitable[Any], other: Awaitable[Any]) -> bool:
    """Await ``main`` unless ``other`` ends first (then cancel ``main``); True if ``main`` won.

    ``main``'s exception, if it ends with one, is raised.
    """
    main_task = asyncio.ensure_future(main)
    other_task = asyncio.ensure_future(other)
    try:
        await asyncio.wait({main_task, other_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (main_task, other_task):
            task.cancel()
        await asyncio.gather(main_task, other_task, return_exceptions=True)
    if main_task.cancelled():
        return False
    main_task.result()
    return True
