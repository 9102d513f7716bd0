"""``roomsignal serve`` as a real process: healthz, logs, and shutdown on signals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys

import pytest

from roomsignal import Session, SessionError, SessionErrorException
from roomsignal.cli._options import bind_host
from roomsignal.cli._serve import _remove_signals, install_stop_signals
from roomsignal.protocol import SessionClosedParams
from roomsignal.tokens import mint

from .conftest import ROOT, SECRET, cli_env, spawn


async def _healthz(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    await writer.drain()
    async with asyncio.timeout(5):
        response = await reader.read()
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return response


def _url(line: str) -> tuple[str, int]:
    url = line.split()[2]
    return url, int(url.rsplit(":", 1)[1])


async def test_serve_answers_healthz_logs_and_closes_sessions_on_sigterm() -> None:
    args = ["serve", "--port", "0", "--sdp-timeout", "3", "--resume-window", "5"]
    args += ["--max-streaming-participants", "2", "--allow-simulation"]
    async with spawn(*args, ROOMSIGNAL_SECRET=SECRET) as proc:
        url, port = _url(await proc.line(lambda line: line.startswith("listening on ws://")))

        response = await _healthz(port)
        assert response.startswith(b"HTTP/1.1 200")
        assert response.endswith(b"ok\n")

        errors: list[SessionError] = []
        closed: asyncio.Future[SessionClosedParams] = asyncio.get_running_loop().create_future()
        session = Session(url, token=mint(SECRET, "room"), name="alice", reconnect=None)
        session.on_session_error(errors.append)
        session.on_session_closed(closed.set_result)
        gone = asyncio.Event()
        session.on_disconnected(lambda event: gone.set())
        async with session:
            await proc.line(lambda line: "joined session room" in line, stderr=True)
            with contextlib.suppress(SessionErrorException):
                await session.publish(audio=False, video=False)
            await proc.line(lambda line: "refused with 105" in line, stderr=True)
            with contextlib.suppress(SessionErrorException):  # --allow-simulation: 201
                await session.simulate_scenario("internalError")
            proc.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(5):
                event = await closed
                await gone.wait()  # closing before the socket did would make 905 (client)
        assert event.reason == "serverShutdown"
        assert [e.code for e in errors] == [105, 201, 203]
        assert await proc.wait() == 0
        await proc.line(lambda line: "server stopped" in line, stderr=True)
        assert not any("Traceback" in line for line in proc.stdout)
        announced = [line for line in proc.stdout + proc.stderr if url in line]
        assert len(announced) == 1, announced  # serving is announced once
        assert "simulation allowed, sdp_timeout 3s, resume_window 5s" in announced[0]


async def test_serve_dev_generates_a_secret_and_stops_on_sigint() -> None:
    async with spawn("serve", "--dev", "--port", "0", "--log-level", "warning") as proc:
        secret_line = await proc.line(lambda line: line.startswith("dev secret"))
        secret = secret_line.rsplit(" ", 1)[1]
        url, _ = _url(await proc.line(lambda line: line.startswith("listening on")))
        async with Session(url, token=mint(secret, "room"), name="bob", reconnect=None) as bob:
            assert bob.session_id == "room"
        proc.process.send_signal(signal.SIGINT)
        assert await proc.wait() == 0
        assert proc.stderr == []  # warning level: nothing to say


async def test_a_second_signal_sets_then_with_no_gap_between_the_two() -> None:
    """One handler for both signals: never removed and put back, so never the default action.

    (A handler swapped between the first signal and the second left a moment
    where a second SIGTERM killed ``serve`` mid-drain, exit -15.)
    """
    stop, then = asyncio.Event(), asyncio.Event()
    installed = install_stop_signals(stop, then=then)
    try:
        assert installed == [signal.SIGINT, signal.SIGTERM]
        # The loop's own record of the handler: a remove and re-add makes a new
        # one (signal.getsignal shows asyncio's shared no-op either way).
        handlers = asyncio.get_running_loop()._signal_handlers  # type: ignore[attr-defined]
        handler = handlers[signal.SIGINT]
        os.kill(os.getpid(), signal.SIGINT)
        async with asyncio.timeout(5):
            await stop.wait()
        assert not then.is_set()
        assert handlers.get(signal.SIGINT) is handler  # the same one all along
        os.kill(os.getpid(), signal.SIGINT)
        async with asyncio.timeout(5):
            await then.wait()
    finally:
        _remove_signals(installed)


_AUDIT = """
import sys
seen = []
def hook(event, args):
    if event.startswith(("socket.getaddrinfo", "socket.gethostbyname", "socket.connect")):
        seen.append(event)
sys.addaudithook(hook)
from roomsignal.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exc:
    status = exc.code
print("LOOKUPS:" + ",".join(seen), file=sys.stderr)
sys.exit(status)
"""


@pytest.mark.parametrize("host", ["256.1.1.1", "example.invalid", "1.2.3", "", "localhost.example"])
def test_a_host_that_is_no_address_of_ours_is_refused_before_any_lookup(host: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _AUDIT, "serve", "--host", host, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=20,
        env=cli_env(ROOMSIGNAL_SECRET=SECRET),
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[-1] == "LOOKUPS:"  # nothing resolved, nothing dialled
    assert "Traceback" not in result.stderr
    assert f"not an IP address nor a name of this machine: {host!r}" in lines[-2]
    assert result.stdout == ""


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "localhost", "LOCALHOST"])
async def test_addresses_and_names_of_this_machine_are_served(host: str) -> None:
    async with spawn("serve", "--host", host, "--port", "0", ROOMSIGNAL_SECRET=SECRET) as proc:
        line = await proc.line(lambda line: line.startswith("listening on ws://"))
        _, port = _url(line)
        proc.process.send_signal(signal.SIGTERM)
        assert await proc.wait() == 0
    assert port > 0


def test_bind_host_takes_this_machines_own_name() -> None:
    assert bind_host(socket.gethostname()) == socket.gethostname()
    assert bind_host(" 0.0.0.0 ") == "0.0.0.0" and bind_host("[::]") == "::"
