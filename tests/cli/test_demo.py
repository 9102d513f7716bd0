"""``roomsignal demo``: all 15 room codes seen through the listeners, exit 0, fast."""

from __future__ import annotations

import json
import re
import time

import pytest

from roomsignal.catalog import lookup
from roomsignal.cli import main
from roomsignal.cli._demo import DEMO_CODES

from .conftest import run_cli

CODES = {101, 102, 103, 104, 105, 106, 107, 108, 201, 203, 204, 206, 303, 1100, 1101}


def test_the_demo_covers_the_fifteen_codes_of_protocol_section_3() -> None:
    assert set(DEMO_CODES) == CODES


def test_demo_json_sees_every_code_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.perf_counter()
    assert main(["demo", "--json"]) == 0
    elapsed = time.perf_counter() - started
    out = capsys.readouterr().out
    summary = json.loads(out)  # one JSON object, nothing else on stdout
    assert summary["ok"] is True
    assert sorted(summary["seen"]) == sorted(CODES)
    assert summary["missing"] == []
    assert summary["steps_failed"] == []
    assert elapsed < 20
    heard = {error["code"]: error for error in summary["errors"]}
    for code in CODES:
        assert heard[code]["name"] == lookup(code).name
        assert heard[code]["category"] == lookup(code).category
        assert heard[code]["bot"]
    assert heard[201]["method"] == "simulateScenario"
    # 203 reached every member of the closed session, then the late joiner.
    closed = {e["bot"] for e in summary["errors"] if e["code"] == 203}
    assert {"host", "bob", "carol", "late"} <= closed


def test_demo_in_a_terminal_shows_each_error_and_the_summary() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "15/15 codes seen" in out
    assert "OK" in out.splitlines()[-1]
    for code in CODES:
        name = lookup(code).name
        assert f"on_session_error: {code} {name} [{lookup(code).category}]" in out
        assert re.search(rf"^\s+{code}\s+{name}\s+\w+\s+\[x\]", out, re.M)  # summary row
    assert "[ ]" not in out
    assert out.count("[x]") == 15
