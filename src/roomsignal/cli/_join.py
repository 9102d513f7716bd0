"""``roomsignal join``: join a session, print every event as it arrives, and talk.

One line per event (or one JSON object per line with ``--json``) on stdout,
participants shown by name. Each line typed on stdin is sent as chat to
everyone else, and printed once the server took it; ``/to NAME text`` sends
``text`` to the participant named NAME only (``//`` starts a line that
begins with ``/``). It runs until one of these, with this exit status:

- 0: you left: Ctrl-C, SIGTERM, or the end of stdin (Ctrl-D, the end of a
  pipe or file; with stdin on ``/dev/null`` it only watches); the session is
  left cleanly, the last line is ``left``;
- 0: the server ended the session: a moderator closed it, or the server shut
  down (``session_closed`` says which, in ``reason``);
- 1: the join was refused, or the connection was lost for good (one line on
  stderr says which);
- 2: bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import stat
import sys
from collections.abc import AsyncIterator
from typing import Any

from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from roomsignal.cli._options import (
    CommandError,
    UsageError,
    non_negative_int,
    positive_float,
    unless,
)
from roomsignal.cli._render import EVENTS, Names, clock, event_json, event_line
from roomsignal.cli._serve import install_stop_signals
from roomsignal.cli._tls import add_ca_option, client_ssl
from roomsignal.client import Connected, Disconnected, ReconnectPolicy, Session
from roomsignal.errors import SessionError, SessionErrorException
from roomsignal.protocol import ParticipantJoinedParams

__all__ = ["add_join_command"]

_DEFAULT_ATTEMPTS = ReconnectPolicy().max_attempts


def add_join_command(commands: Any) -> None:
    """Register ``join`` on the subcommand parsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "join",
        help="join a session and print every event",
        description="Join a session and print every event and error as it arrives, "
        "until Ctrl-C, SIGTERM or the end of stdin; then leave cleanly. Each line of "
        "stdin is sent as chat; '/to NAME text' sends text to NAME only.",
        epilog="Exit status: 0 when you left (Ctrl-C, SIGTERM, end of stdin) or the "
        "server ended the session (a moderator closed it, or the server shut down); "
        "1 when the join was refused or the connection was lost for good; 2 on bad usage.",
    )
    parser.add_argument(
        "url",
        nargs="+",
        help="the server, e.g. ws://127.0.0.1:8765; several (a cluster's nodes) fail over one after another",
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
    add_ca_option(parser)
    parser.set_defaults(run=run_join)


class _Printer:
    """Prints each event as one line, keeps the names of ids, notices the end of the session."""

    def __init__(self, as_json: bool, name: str) -> None:
        self.as_json = as_json
        self.name = name
        self.over = asyncio.Event()
        self.joined = False
        self.closed_by_server = False
        self.names: dict[str, str] = {}  # never forgotten: a left member keeps its name

    def emit(self, event: str, payload: Any) -> None:
        names: Names = self.names
        if self.as_json:
            line = event_json(event, payload, names=names)
        else:
            line = f"{clock()} {event_line(event, payload, names)}"
        print(line, flush=True)

    def on_event(self, event: str, payload: Any) -> None:
        if isinstance(payload, Connected):
            self.joined = True
            self.names[payload.participant_id] = self.name
            self.names.update((p.participant_id, p.name) for p in payload.participants)
        elif event == "reconnected":  # a state reset gives us a new id
            self.names[payload.participant_id] = self.name
        elif isinstance(payload, ParticipantJoinedParams):
            self.names[payload.participant.participant_id] = payload.participant.name
        elif isinstance(payload, SessionError) and payload.method == "join" and not self.joined:
            return  # the refusal of the first join: said once, on stderr, by run_join
        elif event == "session_closed":
            self.closed_by_server = True
        self.emit(event, payload)
        # After sessionClosed the server closes the connection: wait for that
        # (``disconnected``) rather than leave on a connection that is closing.
        if isinstance(payload, Disconnected) and not payload.will_reconnect:
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
    for url in args.url:
        args.ssl = client_ssl(args, url)  # --ca-file needs every URL to be wss://
    return asyncio.run(_join(args))


async def _join(args: argparse.Namespace) -> int:
    printer = _Printer(args.json, args.name)
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
        ssl=args.ssl,
    )
    # Listeners first: nothing that follows the join result may be missed.
    for event in EVENTS:
        getattr(session, f"on_{event}")(functools.partial(printer.on_event, event))
    stop = asyncio.Event()
    install_stop_signals(stop)
    try:
        try:
            if not await unless(session.connect(), stop.wait()):
                return 0  # you stopped it while it joined: nothing to leave
        except SessionErrorException as exc:
            error = exc.error
            raise CommandError(
                f"cannot join {' or '.join(args.url)} as {args.name!r}: "
                f"{error.code} {error.name}: {error.message}"
            ) from None
        talker = asyncio.ensure_future(_talk(session, printer))
        waiters = {
            talker,
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(printer.over.wait()),
        }
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        failure = None if talker.cancelled() else talker.exception()
        if failure is not None:
            raise failure  # a bug: main prints it as one line
        left = not printer.over.is_set()  # a signal or the end of stdin: we leave
    finally:
        await session.close()
    if left:
        printer.emit("left", {"name": args.name})
        return 0
    if not printer.closed_by_server:
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


def _usage(why: str) -> None:
    print(f"roomsignal join: {why}", file=sys.stderr, flush=True)


async def _talk(session: Session, printer: _Printer) -> None:
    """Send what is typed on stdin as chat (``/to NAME text`` privately); ends at its end.

    With nothing to read (stdin on ``/dev/null``, or none) it never ends.
    """
    if not _readable_stdin():
        await asyncio.Future()  # nothing to say: watch until stopped
    async for line in _stdin_lines():
        if not line.strip():
            continue
        to: list[str] | None = None
        text = line
        if line.startswith("//"):  # a line that begins with "/", escaped
            text = line[1:]
        elif line.startswith("/"):
            command, _, rest = line[1:].partition(" ")
            if command != "to":
                _usage(f"unknown command /{command} (only /to NAME text; // sends a '/')")
                continue
            name, _, text = rest.strip().partition(" ")
            if not name or not text.strip():
                _usage("usage: /to NAME text")
                continue
            to = [p.participant_id for p in session.participants.values() if p.name == name]
            if not to:
                _usage(f"no participant named {name!r}")
                continue
        try:
            await session.send_message(text, to=to)
        except SessionErrorException:
            continue  # the refusal is already printed by the session_error listener
        echo: dict[str, Any] = {"from": session.participant_id, "text": text}
        echo["private"] = to is not None
        if to is not None:
            echo["to"] = to
        printer.emit("message", echo)


def _readable_stdin() -> bool:
    """Whether stdin is something one types or pipes into (not /dev/null, not closed)."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
        return (
            sys.stdin.isatty() or stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
        )
    except (ValueError, OSError, AttributeError):
        return False
