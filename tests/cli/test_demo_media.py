"""``roomsignal demo --media``: one publisher bot, two subscribers, real decoded frames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aiortc", reason="the media extra is not installed")

from roomsignal.cli import main
from roomsignal.cli._demo_media import FRAMES
from roomsignal.server._janus_process import janus_binary

from .conftest import ROOT, cli_env, one_clear_line, run_cli


def test_demo_media_json_has_ok_and_each_subscribers_frames(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--media", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)  # one object, nothing else on stdout
    assert summary["ok"] is True
    assert set(summary["subscribers"]) == {"alice", "bob"}
    for result in summary["subscribers"].values():
        assert result["frames"] >= FRAMES == 30
        assert 0 < result["first_frame_s"] < 30
        assert (result["width"], result["height"]) == (320, 240)
        assert result["audio_frames"] > 0


def test_demo_media_in_a_terminal() -> None:
    result = run_cli("demo", "--media", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    out = result.stdout
    for name in ("alice", "bob"):
        assert f"{name:<7} first frame after " in out
    assert "studio  answered 2 subscription(s)" in out
    assert out.splitlines()[-1].startswith("2/2 subscribers decoded >= 30 video frames in ")
    assert out.splitlines()[-1].endswith(": OK")


def test_plain_demo_does_not_import_aiortc() -> None:
    code = (
        "import sys; from roomsignal.cli import main; "
        "status = main(['demo', '--json']); "
        "assert 'aiortc' not in sys.modules and 'av' not in sys.modules, 'media imported'; "
        "sys.exit(status)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_demo_media_without_the_extra_is_one_line() -> None:
    # As on a machine without the extra: the import of aiortc fails.
    code = (
        "import sys; sys.modules['aiortc'] = None; from roomsignal.cli import main; "
        "sys.exit(main(['demo', '--media']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=60
    )
    assert result.returncode == 1
    line = one_clear_line(result.stderr)
    assert line == (
        "roomsignal demo: demo --media needs the media extra: pip install 'roomsignal[media]'"
    )


def _require_janus() -> None:
    if janus_binary() is not None:
        return
    if os.environ.get("CI"):
        pytest.fail("janus is not installed (.ci/run installs it)")
    pytest.skip("janus is not installed (/usr/bin/janus)")


def test_demo_media_sfu_json_one_upstream_four_subscribers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _require_janus()
    assert main(["demo", "--media", "--sfu", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is True and summary["failure"] is None
    assert summary["media"] == "sfu"
    assert summary["upstreams"] == 1 and summary["subscribe_requests"] == 0
    assert set(summary["subscribers"]) == {"alice", "bob", "carol", "dave"}
    for result in summary["subscribers"].values():
        assert result["frames"] >= FRAMES
        assert (result["width"], result["height"]) == (320, 240)


def test_demo_media_sfu_in_a_terminal_leaves_no_janus() -> None:
    _require_janus()
    result = run_cli("demo", "--media", "--sfu", timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("roomsignal demo --media --sfu: reference server on ws://127.0.0.1:")
    pid = int(out.split("(pid ", 1)[1].split(")", 1)[0])
    assert "studio  sent 1 upstream(s) to the media node for 4 subscribers" in out
    assert "got 0 subscribeRequest(s)" in out
    assert out.splitlines()[-1].startswith("4/4 subscribers decoded >= 30 video frames in ")
    assert not os.path.exists(f"/proc/{pid}")  # the private Janus was stopped


def test_sfu_without_media_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--sfu"]) == 2
    assert "--sfu goes with --media" in capsys.readouterr().err


def test_demo_media_sfu_with_a_janus_that_does_not_start_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "janus"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    path = f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}"
    result = run_cli("demo", "--media", "--sfu", timeout=60, PATH=path)
    assert result.returncode == 1
    line = one_clear_line(result.stderr)
    assert line.startswith("roomsignal demo: demo --media --sfu: Janus did not start: ")
    assert "exited with 3" in line
