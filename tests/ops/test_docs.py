"""docs/operations.md's metrics list is generated from the code (``METRICS``), never by hand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from roomsignal.server._metrics import METRICS, render_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_the_metrics_list_in_the_docs_is_the_generated_one() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_operations.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    page = (ROOT / "docs" / "operations.md").read_text()
    for metric in METRICS:
        assert f"`{metric.name}" in page


def test_every_metric_is_listed_once_with_bounded_labels() -> None:
    names = [m.name for m in METRICS]
    assert len(names) == len(set(names))
    table = render_markdown()
    assert table.count("\n") == len(METRICS) + 2
    for metric in METRICS:
        assert metric.name.startswith("roomsignal_")
        assert not {"session", "participant", "session_id", "participant_id"} & set(metric.labels)


def test_the_log_fields_in_the_docs_are_the_formatters() -> None:
    from roomsignal.server._logs import FIELDS

    page = (ROOT / "docs" / "operations.md").read_text()
    logs = page.split("### Logs", 1)[1].split("\n#", 1)[0]
    listed = [line.split("`")[1] for line in logs.splitlines() if line.startswith("- `")]
    assert listed == list(FIELDS)


def test_the_web_page_lists_health_readiness_and_metrics() -> None:
    from roomsignal.server._metrics import METRICS_PATH
    from roomsignal.server._transport import _HEALTH_PATHS

    rows = {
        line.split("`")[1]: line
        for line in (ROOT / "docs" / "web.md").read_text().splitlines()
        if line.startswith("| `/")
    }
    for path in _HEALTH_PATHS:
        assert "503" in rows[path] and "operations.md" in rows[path]
    assert "404" in rows[METRICS_PATH]
