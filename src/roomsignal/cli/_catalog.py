"""``roomsignal errors``: the error catalog as a table, JSON or Markdown."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from roomsignal.catalog import entries, render_markdown

__all__ = ["add_errors_command", "catalog_json", "catalog_table"]


def add_errors_command(commands: Any) -> None:
    """Register ``errors`` on the subcommand parsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "errors",
        help="print the error catalog",
        description="Print every error code roomsignal knows: name, category, "
        "whether retrying can help, and what causes it.",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "markdown"),
        default="table",
        help="output format (default: table)",
    )
    parser.set_defaults(run=run_errors)


def catalog_table() -> str:
    """The catalog as an aligned plain-text table (one line per code)."""
    header = ("CODE", "NAME", "CATEGORY", "RETRY", "DESCRIPTION")
    rows = [
        (
            str(entry.code),
            entry.name,
            entry.category,
            "yes" if entry.retryable else "no",
            entry.description,
        )
        for entry in entries()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].rjust(widths[0])] + [row[i].ljust(widths[i]) for i in range(1, 4)]
        lines.append("  ".join([*cells, row[4]]))
    return "\n".join(lines) + "\n"


def catalog_json() -> str:
    """The catalog as a JSON list of objects."""
    items = [
        {
            "code": entry.code,
            "name": entry.name,
            "category": entry.category,
            "retryable": entry.retryable,
            "description": entry.description,
            "causes": list(entry.causes),
        }
        for entry in entries()
    ]
    return json.dumps(items, indent=2) + "\n"


def run_errors(args: argparse.Namespace) -> int:
    """Print the catalog in the chosen format."""
    render = {"table": catalog_table, "json": catalog_json, "markdown": render_markdown}
    sys.stdout.write(render[args.format]())
    return 0
