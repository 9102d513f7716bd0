"""``roomsignal join URL [URL ...]``: several URLs go to ``Session`` (failover)."""

from __future__ import annotations

import json
import signal
import socket

from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

from .conftest import SECRET, spawn


def _dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"ws://127.0.0.1:{port}"


async def test_join_takes_several_urls_and_dials_the_next_that_answers(
    server: SignalingServer,
) -> None:
    token = mint(SECRET, "room")
    args = ["join", _dead_url(), server.url, "--token", token, "--name", "w", "--json"]
    async with spawn(*args) as proc:
        line = await proc.line(lambda line: json.loads(line)["event"] == "connected")
        assert json.loads(line)["sessionId"] == "room"
        proc.process.send_signal(signal.SIGINT)
        assert await proc.wait() == 0


async def test_join_refuses_a_bad_url_among_several(server: SignalingServer) -> None:
    token = mint(SECRET, "room")
    async with spawn("join", server.url, "http://nope", "--token", token, "--name", "w") as proc:
        assert await proc.wait() == 2
        assert any("http://nope" in line for line in proc.stderr)
