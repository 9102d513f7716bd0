"""``roomsignal load-test`` over a cluster's nodes: the bots spread over every URL given."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest

from .conftest import SECRET, Node, RedisServer

pytestmark = pytest.mark.timeout(90)


async def test_load_test_spreads_its_bots_over_the_nodes(
    nodes: list[Node], redis: RedisServer
) -> None:
    """Bots of one room on three nodes: every message reaches every other bot, in order."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "roomsignal", "load-test", *(node.url for node in nodes)),
        *("--secret", SECRET, "--rooms", "2", "--participants", "9", "--rate", "100"),
        *("--duration", "2", "--message-rate", "10", "--json", "--seed", "3"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    finally:  # a load test timed out goes no further against the next test's cluster
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    report = json.loads(out.decode().splitlines()[-1])
    assert report["urls"] == [node.url for node in nodes]
    assert report["ok"] is True and report["joined"] == 9
    messages = report["messages"]
    assert messages["sent"] == 2 * 20 and messages["unconfirmed"] == 0
    assert messages["lost_any"] == messages["lost"] == 0
    assert messages["duplicated"] == messages["out_of_order"] == 0
    # 5 + 4 bots: each message of a room of 5 reaches 4, of a room of 4 reaches 3
    assert messages["delivered"] == messages["expected_deliveries"] > 0


def test_a_foreign_url_among_several_is_refused() -> None:
    import subprocess

    urls = ["ws://127.0.0.1:1", "ws://192.0.2.1:1"]
    plan = ["--secret", SECRET, "--rooms", "1", "--participants", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "roomsignal", "load-test", *urls, *plan],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "refusing '192.0.2.1'" in done.stderr
