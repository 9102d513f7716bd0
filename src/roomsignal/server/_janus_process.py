"""A private Janus WebRTC server as a child process (``roomsignal serve --janus``, the tests).

``JanusProcess`` writes a config folder of its own into a temp directory
(never ``/etc/janus``, which listens on every interface and loads every
plugin): only the VideoRoom plugin and the WebSocket transport, the API on
127.0.0.1 with an ACL, no STUN, TURN or 1:1 NAT mapping, no mDNS. Media
candidates are this machine's own addresses (Janus never offers loopback
ones), so nothing leaves the machine. It waits for Janus to answer
``{"janus":"info"}``, and stops it by the pid it started: SIGTERM, then
SIGKILL after ``stop_timeout`` (Janus 1.1.2 can deadlock in its SIGTERM
handler). On Linux Janus also gets SIGKILL if the process that started it
dies first, so a killed ``roomsignal serve --janus`` leaves no Janus behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from roomsignal._processes import stop_process

__all__ = ["JANUS", "JanusProcess", "janus_binary"]

logger = logging.getLogger("roomsignal.server.janus")

JANUS = "/usr/bin/janus"
_LIBDIRS = ("/usr/lib/x86_64-linux-gnu/janus", "/usr/lib/aarch64-linux-gnu/janus", "/usr/lib/janus")


_STABLE = 30.0
"""Seconds a Janus must have run for ``keep_running`` to start it again at once."""


def janus_binary() -> str | None:
    """The path of the ``janus`` executable, or None when it is not installed."""
    found = shutil.which("janus")
    if found:
        return found
    return JANUS if os.access(JANUS, os.X_OK) else None


def _libdir() -> Path:
    for base in _LIBDIRS:
        if Path(base, "plugins", "libjanus_videoroom.so").exists():
            return Path(base)
    raise FileNotFoundError("Janus's libjanus_videoroom.so was not found (is janus installed?)")


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent dies (Linux), so no Janus outlives it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


_PR_SET_PDEATHSIG = 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_MAIN = """general: {{
    configs_folder = "{dir}"
    plugins_folder = "{dir}/plugins"
    transports_folder = "{dir}/transports"
    events_folder = "{dir}/events"
    loggers_folder = "{dir}/loggers"
    debug_level = {debug_level}
    session_timeout = 60
    event_loops = {event_loops}
    {api_secret}
}}
certificates: {{
}}
media: {{
    ipv6 = false
    rtp_port_range = "{rtp_ports}"
}}
nat: {{
    nice_debug = false
    ignore_mdns = true
    ice_ignore_list = "vmnet"
}}
plugins: {{
}}
transports: {{
}}
events: {{
    broadcast = false
}}
"""

_WEBSOCKETS = """general: {{
    json = "compact"
    ws = true
    ws_port = {port}
    ws_ip = "127.0.0.1"
    ws_acl = "127.0.0.1"
    wss = false
}}
admin: {{
    admin_ws = false
    admin_wss = false
}}
"""

_VIDEOROOM = """general: {
}
"""


class JanusProcess:
    """A Janus server on 127.0.0.1, from a private config folder, owned by this object.

    ``await start()`` (or ``async with``) launches it and returns once its
    WebSocket API answers; ``url`` is then ``ws://127.0.0.1:<port>``.
    ``kill()`` sends SIGKILL (as a crash); ``restart()`` starts it again on
    the same port; ``keep_running()`` does so each time it exits on its own. ``stop()`` is idempotent and removes the temp folder.
    ``event_loops`` is Janus's setting of that name: by default one loop
    thread a core (at most 4) shared by every handle, not a thread per
    handle (Janus's own default, 0), which halves its CPU per forwarded
    packet in a room of hundreds of viewers (docs/benchmarks.md).
    """

    def __init__(
        self,
        *,
        api_secret: str | None = None,
        port: int | None = None,
        binary: str | None = None,
        debug_level: int = 2,
        start_timeout: float = 10.0,
        stop_timeout: float = 3.0,
        rtp_ports: str = "20000-60000",
        event_loops: int | None = None,
    ) -> None:
        self.api_secret = api_secret
        # Janus's default (0) gives every handle (each upstream, each
        # subscription) a thread of its own: hundreds of threads for a room of
        # viewers, about twice the CPU per forwarded packet (docs/benchmarks.md).
        # A few shared loops, one a core, serve them instead.
        self.event_loops = (
            event_loops if event_loops is not None else max(1, min(os.cpu_count() or 1, 4))
        )
        self.port = port if port is not None else _free_port()
        self._binary = binary or janus_binary() or JANUS
        self._debug_level = debug_level
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._rtp_ports = rtp_ports
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:<port>``, the WebSocket API of this Janus."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The pid of the running Janus, or None."""
        process = self.process
        return process.pid if process is not None and process.returncode is None else None

    def _write_config(self) -> Path:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="roomsignal-janus-")
        folder = Path(self._dir.name)
        libdir = _libdir()
        for sub, name in (
            ("plugins", "libjanus_videoroom.so"),
            ("transports", "libjanus_websockets.so"),
        ):
            (folder / sub).mkdir(exist_ok=True)
            link = folder / sub / name
            if not link.exists():
                link.symlink_to(libdir / sub / name)
        for sub in ("events", "loggers"):
            (folder / sub).mkdir(exist_ok=True)
        secret = f'api_secret = "{self.api_secret}"' if self.api_secret else ""
        (folder / "janus.jcfg").write_text(
            _MAIN.format(
                dir=folder,
                debug_level=self._debug_level,
                api_secret=secret,
                rtp_ports=self._rtp_ports,
                event_loops=self.event_loops,
            )
        )
        (folder / "janus.transport.websockets.jcfg").write_text(_WEBSOCKETS.format(port=self.port))
        (folder / "janus.plugin.videoroom.jcfg").write_text(_VIDEOROOM)
        return folder

    async def start(self) -> None:
        """Launch Janus and wait until it answers ``info``; raises RuntimeError if it does not."""
        if self.pid is not None:
            raise RuntimeError("janus is already running")
        folder = self._write_config()
        self.process = await asyncio.create_subprocess_exec(
            self._binary,
            *("-F", str(folder), "-C", str(folder / "janus.jcfg")),
            *("-i", "127.0.0.1", "-o", "-N", "-L", str(folder / "janus.log")),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            async with asyncio.timeout(self._start_timeout):
                while not await self._answers_info():
                    if self.process.returncode is not None:
                        raise RuntimeError(f"janus exited with {self.process.returncode}")
                    await asyncio.sleep(0.02)
        except BaseException:
            await self.stop(keep_dir=True)
            raise
        logger.info("janus %d listening on %s", self.process.pid, self.url)

    async def _answers_info(self) -> bool:
        try:
            async with connect(
                self.url,
                subprotocols=[Subprotocol("janus-protocol")],
                open_timeout=1.0,
                close_timeout=0.2,
            ) as ws:
                message: dict[str, str] = {"janus": "info", "transaction": secrets.token_hex(6)}
                if self.api_secret:
                    message["apisecret"] = self.api_secret
                await ws.send(json.dumps(message))
                async with asyncio.timeout(1.0):
                    answer = json.loads(await ws.recv())
                return isinstance(answer, dict) and answer.get("janus") == "server_info"
        except (OSError, TimeoutError, ValueError) as exc:
            logger.debug("janus not answering yet: %r", exc)
            return False
        except Exception as exc:  # websockets' handshake errors
            logger.debug("janus not answering yet: %r", exc)
            return False

    def kill(self) -> None:
        """SIGKILL the running Janus (a crash, for tests); ``wait_stopped`` then reaps it."""
        process = self.process
        if process is not None and process.returncode is None:
            process.kill()

    async def wait_stopped(self) -> None:
        """Wait until the process has exited (after ``kill``)."""
        if self.process is not None:
            await self.process.wait()

    async def keep_running(self, *, first_delay: float = 0.5, most_delay: float = 10.0) -> None:
        """Start Janus again each time it exits on its own, until cancelled (``serve --janus``).

        Call it once ``start()`` has returned, and cancel it before ``stop()``.
        Each exit is a WARNING with its status. A Janus that ran less than
        ``_STABLE`` seconds, or that will not start, is started again after
        doubling delays (``first_delay`` up to ``most_delay``), so a Janus
        that crashes at once is not restarted in a tight loop. The server's
        media node client reconnects by itself: same port, same URL.
        """
        loop = asyncio.get_running_loop()
        delay = first_delay
        while True:
            process = self.process
            if process is None:
                raise RuntimeError("janus was never started")
            up_since = loop.time()
            status = await process.wait()
            ran = loop.time() - up_since
            logger.warning(
                "janus %d exited (status %d) after %.1fs: starting it again on %s",
                process.pid,
                status,
                ran,
                self.url,
            )
            if ran >= _STABLE:
                delay = first_delay
            else:
                await asyncio.sleep(delay)
                delay = min(most_delay, delay * 2)
            while True:
                try:
                    await self.start()
                    break
                except (OSError, RuntimeError) as exc:
                    logger.error("cannot start janus again (%s): next try in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(most_delay, delay * 2)

    async def restart(self) -> None:
        """Stop (if running) and start again on the same port."""
        await self.stop(keep_dir=True)
        await self.start()

    async def stop(self, keep_dir: bool = False) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; idempotent."""
        process = self.process
        if process is not None and await stop_process(process, self._stop_timeout):
            logger.warning("janus %d ignored SIGTERM: killed", process.pid)
        if not keep_dir and self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
