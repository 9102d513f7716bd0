"""The ``roomsignal`` command line: serve, demo, join, token, errors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from roomsignal.catalog import render_markdown

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="roomsignal", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the demo on the embedded reference server")
    commands.add_parser("errors", help="print the error catalog")
    args = parser.parse_args(argv)
    if args.command == "errors":
        sys.stdout.write(render_markdown())
        return 0
    sys.stdout.write("roomsignal demo: the demo comes with the CLI (issue 5).\n")
    return 0
