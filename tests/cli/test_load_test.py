"""``roomsignal load-test`` as a real process against the reference server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from roomsignal.cli._load_engine import histogram, percentiles
from roomsignal.cli._load_test import _own_addresses, is_this_machine, summary_table
from roomsignal.server import SignalingServer

from .conftest import ROOT, SECRET, cli_env, one_clear_line, spawn

_LOAD_TEST = [sys.executable, "-m", "roomsignal", "load-test"]


def _latency_ok(block: dict[str, Any], count: int) -> None:
    assert block["count"] == count
    assert 0 < block["p50"] <= block["p95"] <= block["p99"] <= block["max"] < 10_000


async def test_a_run_with_chaos_loses_and_duplicates_nothing(server: SignalingServer) -> None:
    args = (
        *("load-test", server.url, "--secret", SECRET, "--rooms", "2", "--participants", "8"),
        *("--publishers", "2", "--rate", "200", "--duration", "2", "--message-rate", "10"),
        *("--chaos", "2", "--json", "--seed", "7"),
    )
    async with spawn(*args) as proc:
        assert await proc.wait(timeout=40) == 0, proc.stderr
    assert len(proc.stdout) == 1, proc.stdout  # stdout is the JSON object alone
    report = json.loads(proc.stdout[0])
    assert proc.stderr == []  # and no table anywhere
    assert report["ok"] is True
    assert report["joined"] == 8 and report["join_failures"] == 0
    _latency_ok(report["join_latency_ms"], 8)
    messages = report["messages"]
    assert messages["sent"] == 2 * 20  # 10/s per room for 2 s, in 2 rooms
    assert messages["lost"] == 0 and messages["duplicated"] == 0
    # every confirmed message reached the 3 other bots of its room
    assert messages["expected_deliveries"] == messages["confirmed"] * 3
    assert messages["delivered"] >= messages["expected_deliveries"]
    assert messages["sent"] == messages["confirmed"] + messages["unconfirmed"]
    _latency_ok(report["message_latency_ms"], messages["delivered"])
    assert sum(report["message_latency_histogram"]["counts"]) == messages["delivered"]
    assert sum(report["join_latency_histogram"]["counts"]) == 8
    chaos = report["chaos"]
    assert chaos["available"] is True and chaos["drops"] == 4  # 2/s for 2 s
    # every cut connection came back into its seat, nothing reset
    assert report["reconnections"] == report["resumed"] == chaos["drops"]
    assert report["state_resets"] == 0
    # one per second per room (a drop may cut one synchronizer's answer)
    assert 2 * 2 - chaos["drops"] <= report["sync_sent"] <= 2 * 2
    # at least the chat deliveries and the sync data were notifications
    assert report["notifications"] >= messages["delivered"] + 3 * report["sync_sent"]
    assert report["notifications_per_s"] > 0
    assert report["drained"] is True and report["cut_short"] is False
    assert report["media"] is None
    # a cut answer to a send (901) is the only error a drop may cause here
    assert {e["code"] for e in report["errors"]} <= {901}
    assert report["errors_total"] == sum(e["count"] for e in report["errors"])
    assert report["elapsed_s"] < 30


async def test_chaos_on_a_server_without_simulation_is_refused_at_the_start() -> None:
    async with SignalingServer(secret=SECRET) as srv:
        args = ("load-test", srv.url, "--secret", SECRET, "--rooms", "1", "--participants", "2")
        args += ("--duration", "30", "--message-rate", "4", "--chaos", "4", "--json")
        async with spawn(*args) as proc:
            assert await proc.wait(timeout=20) == 2
        assert srv.rooms.stats()["participants"] == 0  # the probe left, no bot came
    assert proc.stdout == []
    line = one_clear_line("\n".join(proc.stderr))
    assert "--chaos needs a server that allows simulation" in line


async def test_a_wrong_secret_is_one_line() -> None:
    async with SignalingServer(secret=SECRET) as srv:
        args = ["load-test", srv.url, "--secret", "not-" + SECRET, "--rooms", "1"]
        for extra in ([], ["--json"]):
            async with spawn(*args, "--participants", "3", *extra) as proc:
                assert await proc.wait(timeout=20) == 1
            assert proc.stdout == []
            line = one_clear_line("\n".join(proc.stderr))
            assert "1101 TOKEN_DATA_IS_NOT_VALID" in line and "--secret" in line


async def test_ctrl_c_leaves_every_seat_and_prints_the_partial_summary(
    server: SignalingServer,
) -> None:
    args = ("load-test", server.url, "--secret", SECRET, "--rooms", "2", "--participants", "6")
    args += ("--duration", "60", "--message-rate", "5")
    async with _seated(6) as seated, spawn(*args) as proc:
        await until_seated(seated)
        proc.process.send_signal(signal.SIGINT)
        assert await proc.wait(timeout=20) == 130
        # every bot left (a leave, not a drop: no seat waits out its resume window)
        assert server.rooms.stats()["participants"] == 0
    out = "\n".join(proc.stdout)
    assert "load test: 6 bots in 2 rooms" in out
    assert "interrupted while chatting" in out and "INTERRUPTED" in out
    assert "Traceback" not in "\n".join(proc.stderr)


async def test_ctrl_c_with_json_prints_the_partial_report(server: SignalingServer) -> None:
    args = ("load-test", server.url, "--secret", SECRET, "--rooms", "1", "--participants", "1")
    args += ("--duration", "60", "--json")
    async with _seated(1) as seated, spawn(*args) as proc:
        await until_seated(seated)
        proc.process.send_signal(signal.SIGTERM)
        assert await proc.wait(timeout=20) == 130
    assert proc.stderr == [] and len(proc.stdout) == 1
    report = json.loads(proc.stdout[0])
    assert report["interrupted"] == "chatting" and report["ok"] is False
    assert report["joined"] == 1 and report["plan"]["participants"] == 1


@contextlib.asynccontextmanager
async def _seated(count: int) -> AsyncIterator[asyncio.Event]:
    """An event set once ``count`` load-test bots joined (the server's own log says so)."""
    seated = asyncio.Event()
    joined = 0
    loop = asyncio.get_running_loop()

    class Counter(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            nonlocal joined
            message = record.getMessage()
            if "joined session loadtest-" in message and "probe" not in message:
                joined += 1
                if joined >= count:
                    loop.call_soon_threadsafe(seated.set)

    server_logger = logging.getLogger("roomsignal.server")
    handler, level = Counter(), server_logger.level
    server_logger.addHandler(handler)
    server_logger.setLevel(logging.INFO)
    try:
        yield seated
    finally:
        server_logger.removeHandler(handler)
        server_logger.setLevel(level)


async def until_seated(seated: asyncio.Event) -> None:
    async with asyncio.timeout(20):
        await seated.wait()


def test_one_room_and_one_bot_are_singular() -> None:
    report = {
        "plan": {"participants": 1, "rooms": 1, "duration": 1.0, "message_rate": 1.0, "chaos": 0},
    }
    table = summary_table(_sample_report(report["plan"]))
    assert table.title.startswith("load test: 1 bot in 1 room, ")


def _sample_report(plan: dict[str, Any]) -> dict[str, Any]:
    empty = percentiles([])
    return {
        "plan": plan,
        "joined": 1,
        "join_latency_ms": empty,
        "message_latency_ms": empty,
        "messages": {
            "sent": 0,
            "confirmed": 0,
            "expected_deliveries": 0,
            "delivered": 0,
            "lost": 0,
            "duplicated": 0,
        },
        "notifications_per_s": None,
        "chaos": {"rate": 0, "available": None, "drops": 0},
        "reconnections": 0,
        "resumed": 0,
        "state_resets": 0,
        "errors": [],
        "media": None,
        "interrupted": None,
        "cut_short": False,
        "drained": True,
        "elapsed_s": 1.0,
        "ok": True,
    }


_AUDIT = """
import sys
seen = []
def hook(event, args):
    if event.startswith(("socket.", "ssl.")):  # any socket made, any name resolved
        seen.append(event)
sys.addaudithook(hook)
from roomsignal.cli import main
status = main(sys.argv[1:])
print("NETWORK:" + ",".join(seen), file=sys.stderr)
sys.exit(status)
"""


@pytest.mark.parametrize(
    "url",
    ["ws://192.0.2.1:1", "ws://example.invalid:8765", "ws://[2001:db8::1]:1", "ws://0.0.0.0:1"],
)
def test_a_foreign_host_is_refused_without_a_packet(url: str) -> None:
    args = [url, "--secret", SECRET, "--rooms", "1", "--participants", "1"]
    result = subprocess.run(
        [sys.executable, "-c", _AUDIT, "load-test", *args],
        capture_output=True,
        text=True,
        timeout=20,
        env=cli_env(),
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[-1] == "NETWORK:"  # no socket made, no name resolved
    assert len(lines) == 2 and "Traceback" not in result.stderr
    assert "refusing" in lines[0] and "--i-own-this-server" in lines[0]


def test_the_hosts_of_this_machine_are_accepted() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "localhost", "LOCALHOST", "[::1]", "::ffff:127.0.0.1"):
        assert is_this_machine(host), host
    for host in ("192.0.2.1", "example.com", "localhost.example.com", "0.0.0.0", "10.255.255.1"):
        if host == "10.255.255.1" and any(str(a) == host for a in _own_addresses()):
            continue
        assert not is_this_machine(host), host
    own = [a for a in _own_addresses() if not a.is_loopback]
    for address in own:  # this machine's own interfaces (whatever they are here)
        assert is_this_machine(str(address)), address


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rooms", "0", "--participants", "4"], "must be at least 1"),
        (["--rooms", "x", "--participants", "4"], "not a whole number"),
        (["--rooms", "5", "--participants", "4"], "--rooms must not exceed --participants"),
        (["--rooms", "1", "--participants", "4", "--publishers", "5"], "--publishers"),
        (["--rooms", "1", "--participants", "4", "--duration", "0"], "greater than 0"),
        (["--rooms", "1", "--participants", "4", "--chaos", "-1"], "at least 0"),
        (["--rooms", "1", "--participants", "4", "--rate", "nan"], "greater than 0"),
        (["--rooms", "1", "--participants", "100001"], "--participants is at most"),
        (["--rooms", "1", "--participants", "4", "--duration", "99999"], "--duration is at most"),
        (
            ["--rooms", "1", "--participants", "4", "--media"],
            "--media needs at least one publisher",
        ),
        (["--participants", "4"], "--rooms"),
    ],
)
def test_bad_options_get_one_clear_line(extra: list[str], message: str) -> None:
    result = subprocess.run(
        [*_LOAD_TEST, "ws://127.0.0.1:9", "--secret", SECRET, *extra],
        capture_output=True,
        text=True,
        timeout=20,
        env=cli_env(),
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 2, result
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_no_secret_and_a_bad_url_are_refused() -> None:
    base = _LOAD_TEST
    for argv, message in (
        (["ws://127.0.0.1:9", "--rooms", "1", "--participants", "1"], "no secret"),
        (["http://127.0.0.1:9", "--secret", SECRET, "--rooms", "1", "--participants", "1"], "not a WebSocket URL"),
    ):  # fmt: skip
        result = subprocess.run(
            base + argv, capture_output=True, text=True, timeout=20, env=cli_env(), cwd=ROOT
        )
        assert result.returncode == 2
        assert message in one_clear_line(result.stderr)


def test_an_unreachable_local_server_is_one_line() -> None:
    # port 9 on loopback: nobody listens, the dial is refused at once
    argv = ["ws://127.0.0.1:9", "--secret", SECRET, "--rooms", "1", "--participants", "2"]
    for extra in ([], ["--json"]):
        result = subprocess.run(
            [*_LOAD_TEST, *argv, "--duration", "0.2", "--timeout", "2", *extra],
            capture_output=True,
            text=True,
            timeout=40,
            env=cli_env(),
            cwd=ROOT,
            check=False,
        )
        assert result.returncode == 1, result
        assert result.stdout == ""
        line = one_clear_line(result.stderr)
        assert "cannot connect to ws://127.0.0.1:9" in line


def test_percentiles_are_nearest_rank() -> None:
    samples = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    block = percentiles(samples)
    assert (block["p50"], block["p95"], block["p99"], block["max"]) == pytest.approx(
        (50, 95, 99, 100)
    )
    assert percentiles([])["p50"] is None


def test_the_histogram_keeps_every_sample() -> None:
    block = histogram([0.0, 0.001, 0.001, 0.5, 99.0])  # 0 s and 99 s: outside the range
    counts, edges = block["counts"], block["edges_ms"]
    assert sum(counts) == 5 and len(edges) == len(counts) + 1
    assert counts[0] == 1 and counts[-1] == 1  # clamped into the end bins
    one_ms = next(i for i, edge in enumerate(edges) if edge >= 1.0)
    assert counts[one_ms] == 2  # 1 ms falls in the bin that starts at 1 ms


def _run_on_a_terminal(url: str, *extra: str) -> tuple[int, str]:
    """Run load-test with stdout on a pseudo-terminal; (status, what the terminal got)."""
    main, child = pty.openpty()
    args = ["--secret", SECRET, "--rooms", "1", "--participants", "2", "--duration", "1"]
    with subprocess.Popen(
        [*_LOAD_TEST, url, *args, "--message-rate", "5", *extra],
        stdout=child,
        stderr=subprocess.PIPE,
        env=cli_env(COLUMNS="120"),
        cwd=ROOT,
    ) as process:
        os.close(child)
        chunks = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(main)
        status = process.wait(timeout=20)
    return status, b"".join(chunks).decode(errors="replace")


async def test_live_progress_only_on_a_terminal(server: SignalingServer) -> None:
    status, screen = await asyncio.to_thread(_run_on_a_terminal, server.url)
    assert status == 0, screen
    assert "chatting" in screen and "sent " in screen  # rich's live progress line
    assert "load test: 2 bots in 1 room," in screen and "OK" in screen  # then the table
    status, screen = await asyncio.to_thread(_run_on_a_terminal, server.url, "--json")
    assert status == 0, screen
    assert "chatting" not in screen  # --json: no progress, only the object on stdout
    assert json.loads(screen.strip().splitlines()[-1])["ok"] is True


async def test_media_publishers_send_video_the_others_receive(server: SignalingServer) -> None:
    pytest.importorskip("aiortc", reason="the media extra is not installed")
    args = ("load-test", server.url, "--secret", SECRET, "--rooms", "1", "--participants", "3")
    args += ("--publishers", "1", "--duration", "2", "--message-rate", "5", "--chaos", "1")
    async with spawn(*args, "--media", "--json") as proc:
        assert await proc.wait(timeout=60) == 0, proc.stderr
    report = json.loads(proc.stdout[-1])
    media = report["media"]
    assert media["publishers"] == 1 and media["subscriptions"] == 2  # the 2 others
    assert media["subscription_failures"] == {}
    _latency_ok(media["first_frame_ms"], 2)
    assert media["frames"] > 0
    assert media["mode"] == "p2p" and media["upstreams"] is None
    assert 0 < media["frames_delivered"] <= media["frames"]
    assert 0 <= media["subscribers_sustained"] <= 2
    assert 0 < media["frames_per_s_per_subscription"] <= 16  # a 15 fps source
    assert 0 < media["kbps_per_subscription"] < 10_000
    assert report["messages"]["lost"] == 0 and report["messages"]["duplicated"] == 0
    assert report["reconnections"] == report["chaos"]["drops"] == 2
    assert proc.stderr == []  # --json: the object alone
    from rich.console import Console

    console = Console(file=io.StringIO(), width=120)
    console.print(summary_table(report))  # the table without --json: the media rows
    assert "first frame ms" in console.file.getvalue()


def test_media_without_the_media_extra_is_one_clear_line() -> None:
    code = (
        "import sys; sys.modules['aiortc'] = None\n"  # as if the media extra were missing
        "from roomsignal.cli import main\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    argv = ["ws://127.0.0.1:9", "--secret", SECRET, "--rooms", "1", "--participants", "2"]
    result = subprocess.run(
        [sys.executable, "-c", code, "load-test", *argv, "--publishers", "1", "--media"],
        capture_output=True,
        text=True,
        timeout=20,
        env=cli_env(),
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 2
    assert "--media needs the media extra" in one_clear_line(result.stderr)
