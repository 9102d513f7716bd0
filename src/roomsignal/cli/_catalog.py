"""``roomsignal errors``: the error catalog as a table, JSON or Markdown; one code looked up.

``roomsignal errors`` is a table in code order that fits the terminal (the
descriptions shortened to its width); ``roomsignal errors 206`` (or a name,
``SESSION_IS_FULL_ERROR_CODE``, in any case) is everything the catalog says
of one code. ``--json`` is ``--format json``, as for the other commands.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from typing import Any

from roomsignal.catalog import CatalogEntry, entries, render_markdown
from roomsignal.cli._options import CommandError, UsageError

__all__ = ["add_errors_command", "catalog_json", "catalog_table", "find_entry"]

_NARROWEST_DESCRIPTION = 20  # below this many columns, the table leaves descriptions out


def add_errors_command(commands: Any) -> None:
    """Register ``errors`` on the subcommand parsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "errors",
        help="print the error catalog, or look one code up",
        description="Print every error code roomsignal knows: name, category, "
        "whether retrying can help, and what it means; with CODE, everything the "
        "catalog says of that code, causes included.",
    )
    parser.add_argument(
        "code",
        nargs="?",
        metavar="CODE",
        help="a code (206, -32602) or a name (SESSION_IS_FULL_ERROR_CODE, any case)",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "markdown"),
        default=None,
        help="output format (default: table)",
    )
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.set_defaults(run=run_errors)


def find_entry(text: str) -> CatalogEntry:
    """The catalog entry for a code or a name; ``CommandError`` if the catalog has none."""
    wanted = text.strip()
    try:
        code = int(wanted)
    except ValueError:
        name = wanted.upper()
        for entry in entries():
            if entry.name == name:
                return entry
        raise CommandError(
            f"no error named {text!r} in the catalog (roomsignal errors lists them)"
        ) from None
    for entry in entries():
        if entry.code == code:
            return entry
    raise CommandError(
        f"{code} is not in the catalog: a client keeps it by number, "
        "with category 'unknown' (roomsignal errors lists the codes)"
    )


def _in_code_order() -> list[CatalogEntry]:
    return sorted(entries(), key=lambda entry: entry.code)


def catalog_table(width: int | None = None) -> str:
    """The catalog as an aligned plain-text table, in code order, ``width`` columns at most.

    ``width`` defaults to the terminal's (80 when it is not a terminal);
    descriptions are shortened to fit, and left out when too little room is left.
    """
    if width is None:
        width = shutil.get_terminal_size(fallback=(80, 24)).columns
    header = ("CODE", "NAME", "CATEGORY", "RETRY")
    rows = [
        (str(e.code), e.name, e.category, "yes" if e.retryable else "no") for e in _in_code_order()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    room = width - sum(widths) - 2 * 4
    descriptions = ["DESCRIPTION", *(e.description for e in _in_code_order())]
    lines = []
    for row, description in zip([header, *rows], descriptions, strict=True):
        cells = [row[0].rjust(widths[0])] + [row[i].ljust(widths[i]) for i in range(1, 4)]
        if room >= _NARROWEST_DESCRIPTION:
            cells.append(textwrap.shorten(description, room, placeholder="..."))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _as_json(entry: CatalogEntry) -> dict[str, Any]:
    return {
        "code": entry.code,
        "name": entry.name,
        "category": entry.category,
        "retryable": entry.retryable,
        "description": entry.description,
        "causes": list(entry.causes),
    }


def catalog_json() -> str:
    """The catalog as a JSON list of objects, in code order."""
    return json.dumps([_as_json(entry) for entry in _in_code_order()], indent=2) + "\n"


def entry_text(entry: CatalogEntry) -> str:
    """Everything the catalog says of one code, as a few lines of text."""
    retry = "yes: trying again can succeed" if entry.retryable else "no"
    lines = [
        f"{entry.code} {entry.name}",
        f"  category:  {entry.category}",
        f"  retryable: {retry}",
        *textwrap.wrap(entry.description, 76, initial_indent="  ", subsequent_indent="  "),
    ]
    if entry.causes:
        lines.append("  causes:")
        for cause in entry.causes:
            lines += textwrap.wrap(cause, 76, initial_indent="  - ", subsequent_indent="    ")
    return "\n".join(lines) + "\n"


def run_errors(args: argparse.Namespace) -> int:
    """Print the catalog, or one entry, in the chosen format."""
    if args.json and args.format not in (None, "json"):
        raise UsageError(f"--json and --format {args.format} say two different things")
    form = "json" if args.json else (args.format or "table")
    if args.code is None:
        if form == "json":
            sys.stdout.write(catalog_json())
        elif form == "markdown":
            sys.stdout.write(render_markdown(note=False))
        else:
            sys.stdout.write(catalog_table())
        return 0
    entry = find_entry(args.code)
    if form == "json":
        sys.stdout.write(json.dumps(_as_json(entry), indent=2) + "\n")
    elif form == "markdown":
        sys.stdout.write(render_markdown(codes=[entry.code], note=False))
    else:
        sys.stdout.write(entry_text(entry))
    return 0
