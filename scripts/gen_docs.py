#!/usr/bin/env python3
"""Regenerate the catalog's documents from ``roomsignal.catalog`` (``--check`` only compares).

Three places:

- ``docs/errors.md`` is the whole output of ``roomsignal.catalog.render_markdown``;
- ``README.md`` holds its table, between ``<!-- catalog:start -->`` and
  ``<!-- catalog:end -->``;
- the browser client ``src/roomsignal/web/roomsignal.js`` holds the catalog as
  a JS table (``render_js_catalog``), between the lines ``// catalog:start``
  and ``// catalog:end``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from roomsignal.catalog import entries, render_markdown

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "errors.md"
README = ROOT / "README.md"
START = "<!-- catalog:start -->"
END = "<!-- catalog:end -->"
JS_CLIENT = ROOT / "src" / "roomsignal" / "web" / "roomsignal.js"
JS_START = "// catalog:start"
JS_END = "// catalog:end"


def render_js_catalog() -> str:
    """The catalog as a JS constant ``CATALOG``: one frozen object per code, in catalog order."""
    lines = ["const CATALOG = Object.freeze(["]
    for entry in entries():
        fields = {
            "code": entry.code,
            "name": entry.name,
            "category": entry.category,
            "description": entry.description,
            "retryable": entry.retryable,
        }
        lines.append(f"  Object.freeze({json.dumps(fields, ensure_ascii=False)}),")
    lines.append("]);")
    return "\n".join(lines) + "\n"


def js_with_catalog(source: str) -> str:
    """``source`` with the lines between the JS catalog markers replaced by the table."""
    start = source.find(JS_START)
    end = source.find("\n" + JS_END)
    if start < 0 or end < start:
        raise ValueError(f"roomsignal.js lacks the markers {JS_START} ... {JS_END}")
    head_end = source.index("\n", start) + 1
    return source[:head_end] + render_js_catalog() + source[end + 1 :]


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
    """Write (or with ``--check``, compare) docs/errors.md, the README's and the JS table."""
    docs = render_markdown()
    readme = readme_with_table(README.read_text(encoding="utf-8"))
    js = js_with_catalog(JS_CLIENT.read_text(encoding="utf-8"))
    outputs = ((TARGET, docs), (README, readme), (JS_CLIENT, js))
    if "--check" in sys.argv[1:]:
        stale = [
            str(path.relative_to(ROOT))
            for path, text in outputs
            if path.read_text(encoding="utf-8") != text
        ]
        if stale:
            print(f"{', '.join(stale)} stale: run python scripts/gen_docs.py", file=sys.stderr)
            return 1
        return 0
    for path, text in outputs:
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
