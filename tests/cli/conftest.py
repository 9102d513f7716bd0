"""Helpers for CLI tests: run ``python -m roomsignal`` as a subprocess and read its lines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable

import pytest

from roomsignal.server import SignalingServer

SECRET = "cli-test-secret-0123456789abcdef0123"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess, without ROOMSIGNAL_SECRET unless given."""
    env = {k: v for k, v in os.environ.items() if k != "ROOMSIGNAL_SECRET"}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 20.0, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m roomsignal ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "roomsignal", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(**env),
        cwd=ROOT,
        check=False,
    )


def one_clear_line(stderr: str) -> str:
    """Assert ``stderr`` is exactly one line and no traceback; return it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


class Proc:
    """A running CLI subprocess whose stdout and stderr lines are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = asyncio.Event()
        assert process.stdout is not None and process.stderr is not None
        self._readers = [
            asyncio.ensure_future(self._pump(process.stdout, self.stdout)),
            asyncio.ensure_future(self._pump(process.stderr, self.stderr)),
        ]

    async def _pump(self, stream: asyncio.StreamReader, into: list[str]) -> None:
        while line := await stream.readline():
            into.append(line.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    async def line(
        self, predicate: Callable[[str], bool], *, stderr: bool = False, timeout: float = 10.0
    ) -> str:
        """The first line (of stdout, or stderr) matching ``predicate``, waiting for it."""
        lines = self.stderr if stderr else self.stdout
        async with asyncio.timeout(timeout):
            while True:
                for line in lines:
                    if predicate(line):
                        return line
                if all(r.done() for r in self._readers):
                    raise AssertionError(
                        f"no such line; stdout={self.stdout!r} stderr={self.stderr!r}"
                    )
                self._changed.clear()
                await self._changed.wait()

    async def wait(self, timeout: float = 15.0) -> int:
        """The exit status, once the process and its pipes have ended."""
        async with asyncio.timeout(timeout):
            code = await self.process.wait()
            await asyncio.gather(*self._readers)
        return code

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


@contextlib.asynccontextmanager
async def spawn(*args: str, stdin: bool = False, **env: str) -> AsyncIterator[Proc]:
    """Start ``python -m roomsignal ARGS``; killed (if still running) on exit.

    Its stdin is a pipe (``proc.process.stdin``) when ``stdin`` is true, else empty.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "roomsignal",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(**env),
        cwd=ROOT,
    )
    proc = Proc(process)
    try:
        yield proc
    finally:
        await proc.close()


@pytest.fixture
async def server() -> AsyncIterator[SignalingServer]:
    async with SignalingServer(secret=SECRET, allow_simulation=True) as srv:
        yield srv
