#!/usr/bin/env python3
"""Regenerate the catalog's documents from ``roomsignal.catalog`` (``--check`` only compares).

Two places, one renderer (``roomsignal.catalog.render_markdown``):

- ``docs/errors.md`` is its whole output;
- ``README.md`` holds its table, between ``<!-- catalog:start -->`` and
  ``<!-- catalog:end -->``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from roomsignal.catalog import render_markdown

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "errors.md"
README = ROOT / "README.md"
START = "<!-- catalog:start -->"
END = "<!-- catalog:end -->"


def catalog_table() -> str:
    """The table of ``render_markdown()`` alone: its header, rule and rows."""
    rows = [line for line in render_markdown().splitlines() if line.startswith("|")]
    return "\n".join(rows) + "\n"


def readme_with_table(readme: str) -> str:
    """``readme`` with the text between the catalog markers replaced by the table."""
    start = readme.find(START)
    end = readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md lacks the markers {START} ... {END}")
    return readme[: start + len(START)] + "\n" + catalog_table() + readme[end:]


def main() -> int:
    """Write (or with ``--check``, compare) docs/errors.md and the README's table."""
    docs = render_markdown()
    readme = readme_with_table(README.read_text(encoding="utf-8"))
    if "--check" in sys.argv[1:]:
        stale = [
            str(path.relative_to(ROOT))
            for path, text in ((TARGET, docs), (README, readme))
            if path.read_text(encoding="utf-8") != text
        ]
        if stale:
            print(f"{', '.join(stale)} stale: run python scripts/gen_docs.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(docs, encoding="utf-8")
    README.write_text(readme, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
