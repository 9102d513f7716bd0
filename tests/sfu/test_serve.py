"""``roomsignal serve --janus`` and ``--media-node`` as real processes."""

from __future__ import annotations

import asyncio
import logging
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

WAIT = 10.0


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


async def test_serve_janus_starts_its_janus_again_when_it_dies() -> None:
    args = ("serve", "--port", "0", "--janus", "--log-level", "info")
    async with spawn(*args, ROOMSIGNAL_SECRET=SECRET) as proc:
        line = await proc.line(lambda line: line.startswith("media node: a private Janus"))
        found = re.search(r"on (ws://127\.0\.0\.1:\d+) \(pid (\d+)\)", line)
        assert found is not None
        janus_url, pid = found.group(1), int(found.group(2))
        listening = await proc.line(lambda line: line.startswith("listening on ws://"))
        url = listening.split()[2]
        os.kill(pid, signal.SIGKILL)  # a crash of the private Janus
        said = await proc.line(lambda line: f"janus {pid} exited" in line, stderr=True)
        assert "starting it again" in said and "WARNING" in said
        again = await proc.line(
            lambda line: f"listening on {janus_url}" in line and f"janus {pid} " not in line,
            stderr=True,
        )
        new_pid = int(again.split("janus ", 1)[1].split()[0])
        # The server reconnects to the new Janus by itself (a second session): media works.
        await proc.line(
            lambda line: (
                len([x for x in proc.stderr if f"media node {janus_url}: session" in x]) == 2
            ),
            stderr=True,
        )
        async with Session(url, token=mint(SECRET, "room"), name="studio", reconnect=None) as s:
            result = await s.publish_result(video=True, audio=False)
            assert result.exchange_id is not None
        proc.process.send_signal(signal.SIGTERM)
        assert await proc.wait() == 0
    with pytest.raises(ProcessLookupError):
        os.kill(new_pid, 0)  # and the one it started is stopped with it


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
        exited = asyncio.Event()
        try:
            loop.add_reader(pidfd, exited.set)
            proc.process.kill()  # no chance to stop Janus itself
            await proc.wait()
            await asyncio.wait_for(exited.wait(), 10)
        finally:
            loop.remove_reader(pidfd)
            if not exited.is_set():  # the bug this looks for: leave no Janus running
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)
            shutil.rmtree(folder, ignore_errors=True)


class _Said(logging.Handler):
    """Sets an event at the first record whose message contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


async def test_keep_running_retries_a_janus_that_will_not_start_with_backoff() -> None:
    janus = JanusProcess()
    await janus.start()
    keeper = asyncio.create_task(janus.keep_running(first_delay=0.05, most_delay=0.2))
    failed = _Said("cannot start janus again")
    log = logging.getLogger("roomsignal.server.janus")
    level = log.level
    log.setLevel(logging.INFO)  # "listening on" is INFO
    log.addHandler(failed)
    try:
        real, janus._binary = janus._binary, "/bin/false"  # exits at once: no start
        first = janus.pid
        janus.kill()
        async with asyncio.timeout(WAIT):
            await failed.seen.wait()
        assert not keeper.done()  # it goes on trying
        janus._binary = real
        back = _Said("listening on")
        log.addHandler(back)
        try:
            async with asyncio.timeout(WAIT):
                await back.seen.wait()
        finally:
            log.removeHandler(back)
        assert janus.pid is not None and janus.pid != first
    finally:
        log.removeHandler(failed)
        log.setLevel(level)
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
        await janus.stop()
