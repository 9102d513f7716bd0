#!/usr/bin/env python3
"""Regenerate docs/errors.md from the catalog (``--check`` only compares)."""

from __future__ import annotations

import sys
from pathlib import Path

from roomsignal.catalog import render_markdown

TARGET = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


def main() -> int:
    """Write (or with ``--check``, compare) docs/errors.md."""
    text = render_markdown()
    if "--check" in sys.argv[1:]:
        if TARGET.read_text(encoding="utf-8") != text:
            print("docs/errors.md is stale: run python scripts/gen_docs.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
