"""The ``roomsignal`` command line: serve, demo, join, token, errors, load-test.

``main(argv)`` parses, runs one command and returns its exit status. Bad
input (a missing secret, an unreachable URL, a refused token) is one line on
stderr and a non-zero status, never a traceback; argparse's own errors exit
2 with its usage line.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence

from jwt import InsecureKeyLengthWarning

from roomsignal import __version__
from roomsignal.cli._catalog import add_errors_command
from roomsignal.cli._demo import add_demo_command
from roomsignal.cli._join import add_join_command
from roomsignal.cli._load_test import add_load_test_command
from roomsignal.cli._options import CommandError, UsageError
from roomsignal.cli._serve import add_serve_command
from roomsignal.cli._token import add_token_command
from roomsignal.errors import SessionErrorException

__all__ = ["main"]

logger = logging.getLogger("roomsignal.cli")

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (each has its own ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="roomsignal",
        description="Room-based WebRTC signaling: the reference server, a demo, and tools.",
        epilog="Run 'roomsignal COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"roomsignal {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_demo_command(commands)
    add_serve_command(commands)
    add_join_command(commands)
    add_token_command(commands)
    add_errors_command(commands)
    add_load_test_command(commands)
    return parser


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of ``command`` (argparse keeps it in its subparsers action)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[command]
            return found
    return parser


def _fail(command: str, message: str) -> None:
    """One clear line on stderr (newlines folded so it stays one line)."""
    line = " ".join(str(message).split())
    print(f"roomsignal {command}: {line}", file=sys.stderr, flush=True)


def _own_logging(args: argparse.Namespace) -> bool:
    """Whether the command sets up logging itself: ``serve`` and ``demo`` (but ``--web``)."""
    if args.command == "serve":
        return True
    if args.command == "demo":
        return bool(getattr(args, "media", False)) or not getattr(args, "web", False)
    return False


@contextlib.contextmanager
def _warnings_to_stderr(args: argparse.Namespace) -> Iterator[None]:
    """The library's warnings on stderr, for a command that does not set up logging.

    The package's ``NullHandler`` keeps them off an app's stderr; a command
    is the app here, and shows them (as Python's last-resort handler did),
    unless logging is set up already (``main`` run in-process) or the
    command does it itself. Undone on exit.
    """
    if _own_logging(args) or logging.getLogger().handlers:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(
        logging.Formatter(f"roomsignal {args.command}: %(levelname)s: %(message)s")
    )
    library = logging.getLogger("roomsignal")
    library.addHandler(handler)
    try:
        yield
    finally:
        library.removeHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the subcommand's own usage, not the top-level one
        _subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(unknown)}")
    run: Command = args.run
    command: str = args.command
    try:
        with warnings.catch_warnings(), _warnings_to_stderr(args):
            # PyJWT warns (two lines, per token) about short secrets; the
            # commands that take a secret say it once, in one line.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return run(args)
    except UsageError as exc:
        _fail(command, str(exc))
        return 2
    except CommandError as exc:
        _fail(command, str(exc))
        return 1
    except SessionErrorException as exc:
        error = exc.error
        _fail(command, f"{error.code} {error.name}: {error.message}")
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        _fail(command, exc.strerror or str(exc))
        return 1
    except Exception as exc:  # the last line of defence: one line, never a traceback
        logger.debug("roomsignal %s failed", command, exc_info=True)
        _fail(command, f"unexpected {type(exc).__name__}: {exc}")
        if os.environ.get("ROOMSIGNAL_DEBUG"):
            raise
        return 1
