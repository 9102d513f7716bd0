"""The library's logs reach stderr only where someone asked for them.

``import roomsignal`` puts a ``NullHandler`` on the ``roomsignal`` logger, so an
app that configures no logging sees nothing but what it prints itself (not
Python's last-resort handler's bare lines). The CLI is an app that wants the
library's warnings: ``roomsignal join`` still shows them, each as one line
naming the command. Real subprocesses; the warning comes from a test-local
WebSocket server that sends a notification ``seq`` with a gap.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from client.conftest import JOIN_RESULT

from .conftest import ROOT, cli_env

APP = textwrap.dedent(
    """
    import asyncio
    from roomsignal import Session, SessionErrorException

    async def provider() -> list[str]:
        raise RuntimeError("discovery is down")

    async def main() -> None:
        session = Session(provider, token="t", name="app", reconnect=None)
        try:
            await session.connect()
        except SessionErrorException as exc:
            print("app:", exc.code, exc.error.message)
        finally:
            await session.close()

    asyncio.run(main())
    """
)


def test_an_app_with_no_logging_set_up_prints_only_its_own_lines() -> None:
    result = subprocess.run(
        [sys.executable, "-c", APP],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("app: 901 no URL to dial: RuntimeError('discovery is down')")
    assert result.stderr == ""  # not "no URL to dial: ..." a second time, unformatted


@pytest.fixture
async def gappy_server() -> AsyncIterator[Server]:
    """Answers a join, then sends notification seq 3 right after seq 1 (a gap)."""

    async def handler(ws: ServerConnection) -> None:
        request = json.loads(await ws.recv())
        result = {**JOIN_RESULT, "participantId": "p-cli"}
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}))
        for seq in (1, 3):
            params = {"from": "p-bot", "text": f"n{seq}", "private": False, "seq": seq}
            await ws.send(
                json.dumps({"jsonrpc": "2.0", "method": "messageReceived", "params": params})
            )
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, subprotocols=["roomsignal.v1"]) as server:  # type: ignore[list-item]
        yield server


async def test_roomsignal_join_still_shows_the_library_s_warnings(gappy_server: Server) -> None:
    port = gappy_server.sockets[0].getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "roomsignal", "join", f"ws://127.0.0.1:{port}"),
        *("--token", "t", "--name", "cli", "--no-reconnect"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
        cwd=ROOT,
    )
    assert process.stderr is not None and process.stdin is not None
    try:
        async with asyncio.timeout(20):
            line = (await process.stderr.readline()).decode()
    finally:
        process.stdin.close()  # the end of stdin: join leaves and exits
        try:
            async with asyncio.timeout(10):
                await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert line == "roomsignal join: WARNING: notification seq jumped from 1 to 3\n"
