"""A ``ws://`` URL given for a TLS server: the 901 keeps its reason and hints at ``wss://``.

A real server with a trustme certificate (conftest.py), through the Python
client and the ``roomsignal join`` CLI; a refused port, or ``wss://`` with an
untrusted certificate, gets no hint.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roomsignal import Session, SessionError, SessionErrorException
from roomsignal.server import SignalingServer
from roomsignal.server._tls import server_context
from roomsignal.tokens import mint

from .conftest import SECRET

HINT = "(is it a wss:// server?"


@pytest.fixture
async def tls_server(tls_files: dict[str, Path]) -> AsyncIterator[SignalingServer]:
    context = server_context(tls_files["cert"], tls_files["key"])
    async with SignalingServer(secret=SECRET, host="127.0.0.1", ssl=context) as server:
        yield server


async def _refused(url: str) -> SessionError:
    errors: list[SessionError] = []
    session = Session(url, token=mint(SECRET, "room"), name="alice", reconnect=None)
    session.on_session_error(errors.append)
    with pytest.raises(SessionErrorException) as caught:
        await session.connect()
    await session.close()
    assert [e.code for e in errors] == [901]
    assert caught.value.error == errors[0]
    return errors[0]


async def test_ws_to_a_tls_server_hints_at_wss(tls_server: SignalingServer) -> None:
    url = f"ws://127.0.0.1:{tls_server.port}"
    error = await _refused(url)
    assert url in error.message
    assert "did not receive a valid HTTP response" in error.message  # the reason, kept
    assert HINT in error.message


async def test_the_cli_shows_the_hint(tls_server: SignalingServer) -> None:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "roomsignal", "join", f"ws://127.0.0.1:{tls_server.port}"),
        *("--token", mint(SECRET, "room"), "--name", "cli"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode != 0
    assert HINT in (out + err).decode()


async def test_a_refused_port_and_wss_get_no_hint(tls_server: SignalingServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    error = await _refused(f"ws://127.0.0.1:{dead}")
    assert HINT not in error.message
    # wss:// to the TLS server with no trust for its CA: a certificate error, no hint
    error = await _refused(f"wss://localhost:{tls_server.port}")
    assert "CERTIFICATE_VERIFY_FAILED" in error.message and HINT not in error.message
