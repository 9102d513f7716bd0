"""``dev.py``, the repository's entry point: help, unknown commands, Ctrl-C, the install stamp."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .conftest import ROOT, Proc, cli_env

DEV = Path(ROOT) / "dev.py"


def _dev_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("roomsignal_dev_script", DEV)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _dev(*args: str) -> Proc:
    """``python3 dev.py ARGS`` in a process group of its own (as a terminal's job is)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(DEV),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
        cwd=ROOT,
        process_group=0,
    )
    return Proc(process)


async def _end(proc: Proc) -> None:
    """Close ``proc``; if ``dev.py`` is still running (a failed wait), kill its whole group.

    ``dev.py`` runs the real work as a child: killing ``dev.py`` alone would
    leave that child running (a web demo that never exits, a test run).
    """
    if proc.process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.process.pid, signal.SIGKILL)
    await proc.close()


def _ctrl_c(proc: Proc) -> None:
    """What a terminal does on Ctrl-C: SIGINT to every process of the foreground group."""
    os.killpg(proc.process.pid, signal.SIGINT)


@pytest.mark.parametrize("flag", ["help", "-h", "--help"])
async def test_help_is_the_docstring_and_exit_0(flag: str) -> None:
    proc = await _dev(flag)
    try:
        assert await proc.wait() == 0
    finally:
        await proc.close()
    assert "python3 dev.py demo" in "\n".join(proc.stdout)
    assert proc.stderr == []


async def test_an_unknown_command_is_one_line_and_exit_2() -> None:
    proc = await _dev("tset")
    try:
        assert await proc.wait() == 2
    finally:
        await proc.close()
    assert proc.stdout == []
    assert len(proc.stderr) == 1 and "unknown command 'tset'" in proc.stderr[0]


def test_an_install_with_more_extras_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = _dev_module()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    venv = tmp_path / ".venv"
    venv.mkdir()
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "VENV", venv)
    assert not dev._installed("media")
    (venv / ".installed-dev,media").write_text(dev._digest("dev,media"))
    assert dev._installed("media") and dev._installed("dev") and dev._installed("")
    assert dev._installed("dev,media") and not dev._installed("dev,media,bench")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'y'\n")  # changed since
    assert not dev._installed("media") and not dev._installed("")


def test_this_checkout_needs_no_install_for_the_demos() -> None:
    # `dev.py setup` (CI, and every worktree) installed dev,media: the demos reuse it
    dev = _dev_module()
    if not dev._installed("dev,media"):
        pytest.skip("this .venv was not made by `python3 dev.py setup`")
    assert dev._installed("media") and dev._installed("")


async def test_ctrl_c_stops_demo_web_without_a_traceback() -> None:
    if not _dev_module()._installed("media"):
        pytest.skip("this .venv was not made by `python3 dev.py setup`")
    proc = await _dev("demo", "--web", "--port", "0")
    try:
        await proc.line(lambda line: "open http://127.0.0.1:" in line, timeout=60)
        _ctrl_c(proc)
        status = await proc.wait(timeout=30)
    finally:
        await _end(proc)
    assert "Traceback" not in "\n".join(proc.stderr), proc.stderr
    assert status == 0
    assert proc.stdout[-1] == "roomsignal demo --web: stopped"


async def test_ctrl_c_stops_dev_py_test_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "test_long.py").write_text(
        "import time\n\n\n"
        "def test_long():\n"
        "    print('started', flush=True)\n"
        "    time.sleep(60)  # interrupted long before\n"
    )
    args = ("test", str(tmp_path / "test_long.py"), "-s", "-q", "-p", "no:cacheprovider")
    proc = await _dev(*args)
    try:
        await proc.line(lambda line: "started" in line, timeout=60)
        _ctrl_c(proc)
        status = await proc.wait(timeout=30)
    finally:
        await _end(proc)
    stderr = "\n".join(proc.stderr)
    assert "Traceback" not in stderr and "Traceback" not in "\n".join(proc.stdout), stderr
    assert status == 2  # pytest's own status for an interrupted run
    assert any("KeyboardInterrupt" in line for line in proc.stdout)


async def test_ctrl_c_stops_demo_media_without_a_traceback() -> None:
    if not _dev_module()._installed("media"):
        pytest.skip("this .venv was not made by `python3 dev.py setup`")
    proc = await _dev("demo", "--media")
    try:
        await proc.line(lambda line: "subscribes to studio" in line, timeout=60)
        _ctrl_c(proc)
        status = await proc.wait(timeout=30)
    finally:
        await _end(proc)
    assert "Traceback" not in "\n".join(proc.stderr + proc.stdout), proc.stderr
    assert status in (0, 130)  # 0 if the run was already over
