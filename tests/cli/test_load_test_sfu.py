"""``roomsignal load-test --media`` against a server that routes media through a real Janus."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("aiortc", reason="the media extra is not installed")

from roomsignal.server import SignalingServer
from roomsignal.server._janus_process import JanusProcess, janus_binary

from .conftest import SECRET, spawn

if janus_binary() is None:
    if os.environ.get("CI"):
        pytest.fail("janus is not installed (.ci/run installs it)", pytrace=False)
    pytest.skip("janus is not installed (/usr/bin/janus)", allow_module_level=True)


async def test_media_load_through_a_media_node_reports_upstreams_and_sustained() -> None:
    async with (
        JanusProcess() as janus,
        SignalingServer(secret=SECRET, allow_simulation=True, media_node=janus.url) as server,
    ):
        args = ("load-test", server.url, "--secret", SECRET, "--rooms", "1")
        args += ("--participants", "5", "--publishers", "1", "--duration", "3")
        async with spawn(*args, "--media", "--json") as proc:
            assert await proc.wait(timeout=90) == 0, proc.stderr
    report = json.loads(proc.stdout[-1])
    media = report["media"]
    assert media["mode"] == "sfu"
    assert media["upstreams"] == 1  # one upload for the four others
    assert media["subscriptions"] == 4 and media["subscription_failures"] == {}
    assert media["subscribers_sustained"] == 4
    assert media["frames_delivered"] > 0
    assert not proc.stderr  # --json prints the JSON object only (no table on stderr)
