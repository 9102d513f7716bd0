#!/usr/bin/env python3
"""The project's two entry points, on a machine with only Python 3.11+ and pip.

    python3 dev.py demo    # runs the demo on the embedded reference server
    python3 dev.py test    # runs the test suite
    python3 dev.py setup   # only creates/updates .venv with the dev tools (used by .ci/run)
    python3 dev.py bench   # runs benchmarks/run.py (installs the bench extra)
    python3 dev.py docs    # builds the docs and API reference into site/ (mkdocs)
    python3 dev.py help    # this text (also -h, --help)

Each creates ``.venv`` on first use and (re)installs the project into it
whenever ``pyproject.toml`` changes (an install with more extras counts for
fewer); extra arguments go to the command. Ctrl-C reaches the command, which
stops cleanly; dev.py then exits with its status.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
COMMANDS = ("demo", "test", "setup", "bench", "docs", "help")
INTERRUPT_GRACE = 10.0  # seconds a command has to end after Ctrl-C before it gets its own


def _digest(extras: str) -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()


def _installed(extras: str) -> bool:
    """Whether an up-to-date install has at least ``extras`` (``dev,media`` counts for ``media``)."""
    wanted = {extra for extra in extras.split(",") if extra}
    for stamp in VENV.glob(".installed-*"):
        name = stamp.name.removeprefix(".installed-")
        have = set() if name == "base" else set(name.split(","))
        if wanted <= have and stamp.read_text() == _digest("" if name == "base" else name):
            return True
    return False


def ensure_env(extras: str) -> None:
    """Create the venv and install the project with ``extras`` if out of date."""
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may run under an older python3
        sys.exit("roomsignal needs Python 3.11 or newer")
    if not PYTHON.exists():
        print("dev.py: creating .venv", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if _installed(extras):
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
    (VENV / f".installed-{extras or 'base'}").write_text(_digest(extras))


def run(argv: list[str], env: dict[str, str] | None = None) -> int:
    """Run a command to its end and return its status; Ctrl-C is the command's to handle.

    The terminal sends Ctrl-C to the command too, which stops cleanly; dev.py
    waits for it (no traceback of its own). If only dev.py got the signal,
    the command gets it after ``INTERRUPT_GRACE`` seconds.
    """
    process = subprocess.Popen(argv, cwd=ROOT, env=env)
    forwarded = False
    while True:
        try:
            status: int = process.wait()
            break
        except KeyboardInterrupt:
            try:
                status = process.wait(timeout=INTERRUPT_GRACE)
                break
            except KeyboardInterrupt:
                continue
            except subprocess.TimeoutExpired:
                if not forwarded:
                    process.send_signal(signal.SIGINT)
                    forwarded = True
    return 128 - status if status < 0 else status  # killed by signal N: 128 + N, as a shell says


def main() -> int:
    command, *rest = sys.argv[1:] or ["help"]
    if command in ("help", "-h", "--help"):
        print(__doc__)
        return 0
    if command not in COMMANDS:
        print(
            f"dev.py: unknown command {command!r} (one of: {', '.join(COMMANDS)})",
            file=sys.stderr,
        )
        return 2
    try:
        if command == "demo":
            # the media and web demos run aiortc bots; the plain demo needs nothing more
            ensure_env("media" if {"--media", "--web"} & set(rest) else "")
            return run([str(PYTHON), "-m", "roomsignal", "demo", *rest])
        if command == "setup":
            ensure_env("dev,media")
            return 0
        if command == "test":
            ensure_env("dev,media")
            return run([str(PYTHON), "-m", "pytest", *rest])
        if command == "bench":
            ensure_env("dev,media,bench")
            return run([str(PYTHON), "benchmarks/run.py", *rest])
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # docs
        ensure_env("dev,media")
        return run([str(BIN / "mkdocs"), "build", "--strict", *rest], env=env)
    except KeyboardInterrupt:  # while creating the venv or installing: pip stops too
        print("dev.py: interrupted", file=sys.stderr)
        return 130
    except subprocess.CalledProcessError as exc:  # pip said why, above
        print(f"dev.py: installing into .venv failed (exit {exc.returncode})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
