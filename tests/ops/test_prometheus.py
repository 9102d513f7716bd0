"""``GET /metrics`` scraped by a real Prometheus: 104 and 206 found through its query API."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from roomsignal import Session, SessionErrorException
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

from .conftest import ROOT, SECRET, body_of, http_get, prometheus


async def _refused(session: Session) -> int:
    try:
        await session.connect()
    except SessionErrorException as exc:
        return exc.code
    finally:
        with contextlib.suppress(Exception):
            await session.close()
    raise AssertionError("the join was not refused")


async def test_prometheus_scrapes_errors_by_code_and_name(tmp_path: Path) -> None:
    async with SignalingServer(secret=SECRET, metrics=True, max_streaming_participants=1) as server:
        target = f"127.0.0.1:{server.port}"
        async with prometheus(tmp_path, [target]) as prom:
            up = await prom.wait_for(f'up{{instance="{target}"}} == 1')
            assert up[0]["value"][1] == "1"
            first = Session(server.url, token=mint(SECRET, "room"), name="alice", reconnect=None)
            async with first:
                same_name = Session(
                    server.url, token=mint(SECRET, "room"), name="alice", reconnect=None
                )
                assert await _refused(same_name) == 104
                second_full = Session(
                    server.url, token=mint(SECRET, "room"), name="bob", reconnect=None
                )
                assert await _refused(second_full) == 206

                taken = await prom.wait_for(
                    'roomsignal_errors_total{code="104",name="EXISTING_USER_IN_SESSION_ERROR_CODE",'
                    'via="answer"} >= 1'
                )
                assert len(taken) == 1
                full = await prom.wait_for(
                    'roomsignal_errors_total{code="206",name="SESSION_IS_FULL_ERROR_CODE"} >= 1'
                )
                assert full[0]["metric"]["via"] == "answer"
                joins = await prom.wait_for('roomsignal_joins_total{type="full"} >= 1')
                assert float(joins[0]["value"][1]) == 1.0
                seats = await prom.wait_for(
                    'roomsignal_participants{type="full",connected="true"} == 1'
                )
                assert seats
                latency = await prom.wait_for(
                    'roomsignal_request_seconds_count{method="join"} >= 3'
                )
                assert float(latency[0]["value"][1]) == 3.0
                await _check_queries(prom)


# Panels that must show data once the test above has joined and been refused.
_WITH_DATA = {"Connections", "Sessions", "Joins per second", "Errors per second, by code"}
_WITH_DATA |= {"Request latency p99, by method", "Process CPU"}


async def _check_queries(prom: Any) -> None:
    """Every query of the example dashboard and of docs/operations.md runs in Prometheus."""
    dashboard = json.loads((ROOT / "examples" / "grafana-dashboard.json").read_text())
    titles = set()
    for panel in dashboard["panels"]:
        titles.add(panel["title"])
        for target in panel["targets"]:
            if panel["title"] in _WITH_DATA:
                await prom.wait_for(target["expr"])  # data, not only valid syntax
            else:
                await prom.query(target["expr"])  # raises on a query Prometheus refuses
    assert titles >= _WITH_DATA
    page = (ROOT / "docs" / "operations.md").read_text()
    table = page.split("Queries worth", 1)[1].split("\n\n", 2)[1]
    queries = re.findall(r"^\| [^|]+ \| `(.+)` \|$", table, re.M)
    assert len(queries) >= 5, table
    for query in queries:
        await prom.query(query)


async def test_metrics_off_is_404_and_labels_stay_bounded() -> None:
    async with SignalingServer(secret=SECRET) as server:
        assert not server.metrics_enabled
        assert (await http_get(server.port, "/metrics")).startswith(b"HTTP/1.1 404")
    async with SignalingServer(secret=SECRET, metrics=True, allow_simulation=True) as server:
        session = Session(server.url, token=mint(SECRET, "room"), name="alice", reconnect=None)
        async with session:
            await session.simulate_scenario("sessionErrors", code=123456, count=3)
            await session.simulate_scenario("sessionErrors", code=303, count=2)
            await session.ping()
            text = body_of(await http_get(server.port, "/metrics")).decode()
        assert 'roomsignal_errors_total{code="other",name="UNKNOWN",via="push"} 3.0' in text
        assert (
            'roomsignal_errors_total{code="303",name="MEDIA_ENDPOINT_ERROR_CODE",via="push"} 2.0'
            in text
        )
        assert not re.search(r'"[ps]_[0-9a-f]{12}', text), "an id in a label"
        assert "roomsignal_pings_total 1.0" in text


async def test_without_the_extra_metrics_is_404_and_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    async with SignalingServer(secret=SECRET, metrics=True) as server:
        assert not server.metrics_enabled
        assert (await http_get(server.port, "/metrics")).startswith(b"HTTP/1.1 404")
    assert "pip install 'roomsignal[metrics]'" in caplog.text


@pytest.mark.parametrize("blocked", ["prometheus_client"])
def test_serve_metrics_without_the_extra_says_what_to_install(
    blocked: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from roomsignal.cli import main

    monkeypatch.setitem(sys.modules, blocked, None)  # as if the extra were not installed
    code = main(["serve", "--port", "0", "--metrics", "--secret", SECRET])
    assert code != 0
    err = capsys.readouterr().err
    assert "pip install 'roomsignal[metrics]'" in err
    assert "Traceback" not in err
