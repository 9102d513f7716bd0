#!/usr/bin/env python3
"""The project's two entry points, on a machine with only Python 3.11+ and pip.

    python3 dev.py demo    # runs the demo on the embedded reference server
    python3 dev.py test    # runs the test suite
    python3 dev.py setup   # only creates/updates .venv with the dev tools (used by .ci/run)
    python3 dev.py bench   # runs benchmarks/run.py (installs the bench extra)
    python3 dev.py docs    # builds the docs and API reference into site/ (mkdocs)

Each creates ``.venv`` on first use and (re)installs the project into it
whenever ``pyproject.toml`` changes; extra arguments go to the command.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def ensure_env(extras: str) -> None:
    """Create the venv and install the project with ``extras`` if out of date."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may run under an older python3
        sys.exit("roomsignal needs Python 3.11 or newer")
    if not PYTHON.exists():
        print("dev.py: creating .venv", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    stamp = VENV / f".installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"dev.py: installing roomsignal[{extras}] into .venv", file=sys.stderr)
    target = f".[{extras}]" if extras else "."
    subprocess.run(
        [
            str(PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-e",
            target,
        ],
        cwd=ROOT,
        check=True,
    )
    stamp.write_text(digest)


def main() -> int:
    command, *rest = sys.argv[1:] or ["help"]
    if command == "demo":
        ensure_env("")
        return subprocess.call([str(PYTHON), "-m", "roomsignal", "demo", *rest], cwd=ROOT)
    if command == "setup":
        ensure_env("dev,media")
        return 0
    if command == "test":
        ensure_env("dev,media")
        return subprocess.call([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT)
    if command == "bench":
        ensure_env("dev,media,bench")
        return subprocess.call([str(PYTHON), "benchmarks/run.py", *rest], cwd=ROOT)
    if command == "docs":
        ensure_env("dev")
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
        return subprocess.call([str(BIN / "mkdocs"), "build", "--strict", *rest], cwd=ROOT, env=env)
    print(__doc__)
    return 0 if command == "help" else 2


if __name__ == "__main__":
    sys.exit(main())
