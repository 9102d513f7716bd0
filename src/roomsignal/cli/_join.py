"""``roomsignal join``: join a session, print every event as it arrives, and talk.

One line per event (or one JSON object per line with ``--json``) on stdout,
until Ctrl-C or SIGTERM, when the session is left cleanly; or until the
server closes the session (exit 0) or the connection is lost for good
(exit 1). Each line typed on stdin is sent as chat to everyone else;
``/to NAME text`` sends ``text`` to the participant named NAME only. The end
of stdin stops the talking, not the session.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import stat
import sys
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from roomsignal.cli._options import (
    CommandError,
    UsageError,
    non_negative_int,
    positive_float,
)
from roomsignal.cli._render import EVENTS, clock, event_json, event_line
from roomsignal.cli._serve import install_stop_signals
from roomsignal.client import Disconnected, ReconnectPolicy, Session
from roomsignal.errors import SessionErrorException

__all__ = ["add_join_command"]

_DEFAULT_ATTEMPTS = ReconnectPolicy().max_attempts


def add_join_command(commands: Any) -> None:
    """Register ``join`` on the subcommand parsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "join",
        help="join a session and print every event",
        description="Join a session and print every event and error as it arrives, "
        "until Ctrl-C or SIGTERM; then leave cleanly.",
    )
    parser.add_argument(
        "url",
        nargs="+",
        help="the server, e.g. ws://127.0.0.1:8765; several (a cluster's nodes) fail over in turn",
    )
    parser.add_argument("--token", required=True, help="a token (see 'roomsignal token')")
    parser.add_argument("--name", required=True, help="the name to join under")
    parser.add_argument(
        "--type",
        choices=("full", "viewer", "screen"),
        default="full",
        help="participant type (default: full)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    parser.add_argument(
        "--no-reconnect", action="store_true", help="stop when the connection drops"
    )
    parser.add_argument(
        "--reconnect-attempts",
        type=non_negative_int,
        default=_DEFAULT_ATTEMPTS,
        metavar="N",
        help="reconnection attempts before giving up, and on while the server keeps the seat "
        f"(default: {_DEFAULT_ATTEMPTS}; 0 is --no-reconnect)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="connect and request timeout (default: 10)",
    )
    parser.set_defaults(run=run_join)


class _Printer:
    """Prints each event as one line, and notices when the session is over."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.over = asyncio.Event()
        self.lost = False

    def emit(self, event: str, payload: Any) -> None:
        if self.as_json:
            line = event_json(event, payload)
        else:
            line = f"{clock()} {event_line(event, payload)}"
        print(line, flush=True)

    def on_event(self, event: str, payload: Any) -> None:
        self.emit(event, payload)
        # After sessionClosed the server closes the connection: wait for that
        # (``disconnected``) rather than leave on a connection that is closing.
        if isinstance(payload, Disconnected) and not payload.will_reconnect:
            self.lost = payload.code != 1000
            self.over.set()


def run_join(args: argparse.Namespace) -> int:
    """Join and print until interrupted."""
    for url in args.url:
        try:
            parse_uri(url)
        except (InvalidURI, ValueError) as exc:
            detail = exc.msg if isinstance(exc, InvalidURI) else str(exc)
            raise UsageError(
                f"not a WebSocket URL (ws://HOST:PORT or wss://...): {url!r}: {detail}"
            ) from None
    return asyncio.run(_join(args))


async def _join(args: argparse.Namespace) -> int:
    printer = _Printer(args.json)
    session = Session(
        args.url[0] if len(args.url) == 1 else args.url,
        token=args.token,
        name=args.name,
        participant_type=args.type,
        reconnect=(
            None
            if args.no_reconnect or args.reconnect_attempts == 0
            else ReconnectPolicy(max_attempts=args.reconnect_attempts)
        ),
        open_timeout=args.timeout,
        request_timeout=args.timeout,
    )
    # Listeners first: nothing that follows the join result may be missed.
    for event in EVENTS:
        getattr(session, f"on_{event}")(functools.partial(printer.on_event, event))
    stop = asyncio.Event()
    install_stop_signals(stop)
    try:
        try:
            if not await _first(session.connect(), stop.wait()):
                return 130  # interrupted while joining (connect() is safe to cancel)
        except SessionErrorException as exc:
            error = exc.error
            raise CommandError(
                f"cannot join {' or '.join(args.url)} as {args.name!r}: "
                f"{error.code} {error.name}: {error.message}"
            ) from None
        talker = asyncio.ensure_future(_talk(session))
        try:
            await _first(stop.wait(), printer.over.wait())
        finally:
            talker.cancel()
            await asyncio.gather(talker, return_exceptions=True)
        interrupted = stop.is_set()
    finally:
        await session.close()
    if interrupted:
        printer.emit("left", {"name": args.name})
        return 0
    if printer.lost:
        print("roomsignal join: the connection was lost for good", file=sys.stderr, flush=True)
        return 1
    return 0


async def _stdin_lines() -> AsyncIterator[str]:
    """Lines of stdin without blocking the loop (a pipe or a terminal; else nothing)."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
        interactive = sys.stdin.isatty()
    except (ValueError, OSError, AttributeError):  # closed, or no stdin at all
        return
    if stat.S_ISREG(mode):  # a file: reading it does not block
        for line in sys.stdin:
            yield line.rstrip("\r\n")
        return
    if not (interactive or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return  # /dev/null and other devices: nothing to say
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        while line := await reader.readline():
            yield line.decode(errors="replace").rstrip("\r\n")
    finally:
        transport.close()


async def _talk(session: Session) -> None:
    """Send what is typed on stdin as chat; ``/to NAME text`` privately."""
    async for line in _stdin_lines():
        if not line.strip():
            continue
        to: list[str] | None = None
        text = line
        if line.startswith("/to "):
            _, _, rest = line.partition(" ")
            name, _, text = rest.strip().partition(" ")
            ids = [p.participant_id for p in session.participants.values() if p.name == name]
            if not ids or not text.strip():
                why = "usage: /to NAME text" if ids else f"no participant named {name!r}"
                print(f"roomsignal join: {why}", file=sys.stderr, flush=True)
                continue
            to = ids
        # a refused message is already printed by the session_error listener
        with contextlib.suppress(SessionErrorException):
            await session.send_message(text, to=to)


async def _first(main: Awaitable[Any], other: Awaitable[Any]) -> bool:
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
