#!/usr/bin/env python3
"""Regenerate docs/operations.md's metrics list from ``roomsignal.server._metrics.METRICS``.

The list sits between ``<!-- metrics:start -->`` and ``<!-- metrics:end -->``;
``--check`` only compares (tests/ops/test_docs.py runs it that way).
"""

from __future__ import annotations

import sys
from pathlib import Path

from roomsignal.server._metrics import render_markdown

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "operations.md"
START = "<!-- metrics:start -->"
END = "<!-- metrics:end -->"


def with_metrics(text: str) -> str:
    """``text`` with the lines between the markers replaced by the generated list."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{TARGET} lacks the markers {START} ... {END}")
    return text[: start + len(START)] + "\n" + render_markdown() + text[end:]


def main(argv: list[str]) -> int:
    current = TARGET.read_text()
    wanted = with_metrics(current)
    if "--check" in argv:
        if current != wanted:
            print(f"{TARGET} is out of date: run python scripts/gen_operations.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
