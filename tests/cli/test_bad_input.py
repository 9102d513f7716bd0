"""Bad input to any command: one clear line on stderr, a non-zero status, no traceback.

A few run as real subprocesses, so what a user sees is what is checked; the
rest call ``main`` in-process (in a thread when a server runs in the test's
loop), which is the same code path without the interpreter start-up.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from roomsignal.cli import main
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

from .conftest import SECRET, one_clear_line, run_cli


def test_serve_without_a_secret_refuses_to_start() -> None:
    result = run_cli("serve", "--port", "0")
    assert result.returncode == 2
    line = one_clear_line(result.stderr)
    assert "no secret" in line and "ROOMSIGNAL_SECRET" in line and "--dev" in line
    assert result.stdout == ""


def test_serve_with_an_impossibly_small_max_frame_bytes_exits_2() -> None:
    result = run_cli("serve", "--port", "0", "--secret", SECRET, "--max-frame-bytes", "10")
    assert result.returncode == 2
    line = one_clear_line(result.stderr)
    assert "max_frame_bytes must be at least 512" in line
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (("--media-node-secret", "s"), "--media-node-secret goes with --media-node or --janus"),
        (("--node-id", "n1"), "--node-id means something only with --redis"),
        (("--lease", "5"), "--lease means something only with --redis"),
        (
            ("--node-id", "n1", "--lease", "5"),
            "--node-id and --lease mean something only with --redis",
        ),
    ],
)
def test_serve_refuses_an_option_it_would_ignore(options: tuple[str, ...], said: str) -> None:
    result = run_cli("serve", "--port", "0", "--secret", SECRET, *options)
    assert result.returncode == 2
    assert said in one_clear_line(result.stderr)
    assert result.stdout == ""


def test_signaling_server_refuses_a_max_frame_bytes_below_a_join() -> None:
    with pytest.raises(ValueError, match="max_frame_bytes must be at least 512"):
        SignalingServer(secret=SECRET, max_frame_bytes=511)
    SignalingServer(secret=SECRET, max_frame_bytes=512)  # the least that can seat anyone


def test_join_an_unreachable_url() -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = run_cli("join", f"ws://127.0.0.1:{port}", "--token", "x.y.z", "--name", "n")
    assert result.returncode == 1
    line = one_clear_line(result.stderr)
    assert line.startswith("roomsignal join: cannot join")
    assert "901 GENERIC_CONNECTION_ERROR" in line


def test_unknown_option_exits_2_with_usage() -> None:
    result = run_cli("demo", "--bogus")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("usage: roomsignal")
    assert "unrecognized arguments: --bogus" in result.stderr


def test_serve_on_a_port_in_use_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--secret", SECRET]) == 1
    line = one_clear_line(capsys.readouterr().err)
    assert line.startswith(f"roomsignal serve: cannot listen on 127.0.0.1:{port}")


def test_join_a_url_that_is_not_a_websocket_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["join", "http//nowhere", "--token", "x.y.z", "--name", "n"]) == 2
    captured = capsys.readouterr()
    assert "not a WebSocket URL" in one_clear_line(captured.err)
    assert captured.out == ""


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (mint("another-secret-0123456789abcdef0123456", "room"), "1101 TOKEN_DATA_IS_NOT_VALID"),
        ("not-a-jwt", "1101 TOKEN_DATA_IS_NOT_VALID"),
        (mint(SECRET, "room", ttl=-5), "1100 TOKEN_EXPIRED"),
    ],
)
async def test_join_with_a_bad_token(
    server: SignalingServer, token: str, code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["join", server.url, "--token", token, "--name", "n"]
    assert await asyncio.to_thread(main, argv) == 1
    captured = capsys.readouterr()
    line = one_clear_line(captured.err)
    assert line.startswith("roomsignal join: cannot join")
    assert code in line
    assert captured.out == ""  # said once, on stderr (not also as an event on stdout)
