"""``roomsignal serve --janus`` and ``--media-node`` as real processes."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
from pathlib import Path

import pytest

from cli.conftest import SECRET, spawn
from roomsignal import Session
from roomsignal.server._janus_process import JanusProcess
from roomsignal.tokens import mint


async def test_serve_janus_starts_a_private_janus_and_stops_it_on_exit() -> None:
    async with spawn("serve", "--port", "0", "--janus", ROOMSIGNAL_SECRET=SECRET) as proc:
        line = await proc.line(lambda line: line.startswith("media node: a private Janus"))
        found = re.search(r"on (ws://127\.0\.0\.1:\d+) \(pid (\d+)\)", line)
        assert found is not None
        pid = int(found.group(2))
        listening = await proc.line(lambda line: line.startswith("listening on ws://"))
        url = listening.split()[2]
        assert "(connected)" in await proc.line(lambda line: line.startswith("  media:"))
        async with Session(url, token=mint(SECRET, "room"), name="studio", reconnect=None) as s:
            result = await s.publish_result(video=True, audio=False)
            assert result.exchange_id is not None  # an upstream to the media node
        proc.process.send_signal(signal.SIGTERM)
        assert await proc.wait() == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_serve_media_node_drives_an_existing_janus_with_its_api_secret() -> None:
    async with JanusProcess(api_secret="janus-api-secret") as janus:
        args = ["serve", "--port", "0", "--media-node", janus.url]
        async with spawn(
            *args, "--media-node-secret", "janus-api-secret", ROOMSIGNAL_SECRET=SECRET
        ) as proc:
            await proc.line(lambda line: line.startswith("listening on ws://"))
            assert "(connected)" in await proc.line(lambda line: line.startswith("  media:"))
            proc.process.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0
        # Without the secret Janus refuses the session: the server says so and retries.
        async with spawn(*args, ROOMSIGNAL_SECRET=SECRET) as proc:
            await proc.line(lambda line: line.startswith("listening on ws://"))
            assert "unreachable" in await proc.line(lambda line: line.startswith("  media:"))
            proc.process.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0


async def test_a_killed_serve_janus_leaves_no_janus_behind() -> None:
    loop = asyncio.get_running_loop()
    async with spawn("serve", "--port", "0", "--janus", ROOMSIGNAL_SECRET=SECRET) as proc:
        line = await proc.line(lambda line: line.startswith("media node: a private Janus"))
        found = re.search(r"\(pid (\d+)\)", line)
        assert found is not None
        pid = int(found.group(1))
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")  # noqa: ASYNC240
        folder = argv[argv.index("-F") + 1]  # its private config folder: ours to remove
        pidfd = os.pidfd_open(pid)  # readable once that process has exited
        try:
            exited = asyncio.Event()
            loop.add_reader(pidfd, exited.set)
            proc.process.kill()  # no chance to stop Janus itself
            await proc.wait()
            await asyncio.wait_for(exited.wait(), 10)
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            shutil.rmtree(folder, ignore_errors=True)
