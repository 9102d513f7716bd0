"""A real redis-server on a free port, and real nodes (`roomsignal serve --redis`) as subprocesses.

When /usr/bin/redis-server is missing the tests are skipped, unless ``CI`` is
set: then they fail (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection

from roomsignal import ReconnectPolicy, Session, SessionErrorException, SessionStateError
from roomsignal._processes import stop_process
from roomsignal.tokens import mint

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
SECRET = "cluster-test-secret-0123456789abcdef"
LEASE = 1.5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A redis-server process with no persistence; ``restart()`` keeps its port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            REDIS_SERVER,
            *("--save", "", "--appendonly", "no", "--port", str(self.port)),
            *("--bind", "127.0.0.1", "--loglevel", "warning"),
            stdout=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(10):
            while True:
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    writer.close()
                    await writer.wait_closed()
                    return
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


class Node:
    """One `roomsignal serve --redis` subprocess; ``url`` read from its "listening on" line."""

    def __init__(self, process: asyncio.subprocess.Process, node_id: str, url: str) -> None:
        self.process = process
        self.node_id = node_id
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])

    def kill(self) -> None:
        """``kill -9``."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        await stop_process(self.process, 10)

    async def health(self) -> int:
        """The HTTP status of ``GET /healthz``."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        line = await reader.readline()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return int(line.split()[1])


async def wait_health(node: Node, status: int, timeout: float = 10.0) -> None:
    """Poll another process's ``/healthz`` until it answers ``status``: no event crosses processes."""
    async with asyncio.timeout(timeout):
        while await node.health() != status:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def start_node(redis: RedisServer, node_id: str, *extra: str) -> Node:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "roomsignal", "serve", "--redis", redis.url, "--port", "0"),
        *("--secret", SECRET, "--node-id", node_id, "--lease", str(LEASE), "--no-web"),
        # RS_NODE_LOG=info (or debug) shows the nodes' own logs when a test fails
        *("--allow-simulation", "--log-level", os.environ.get("RS_NODE_LOG", "warning"), *extra),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    async with asyncio.timeout(20):
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise RuntimeError(f"node {node_id} exited before listening")
            if line.startswith("listening on "):
                url = line.split()[2]
                return Node(process, node_id, url)


def redis_or_skip() -> None:
    if os.path.exists(REDIS_SERVER):
        return
    message = f"{REDIS_SERVER} is missing (apt-get install redis-server)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: CI must run the cluster tests")
    pytest.skip(message)


async def redis_running() -> AsyncIterator[RedisServer]:
    redis_or_skip()
    server = RedisServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def three_nodes(redis: RedisServer) -> AsyncIterator[list[Node]]:
    """Three nodes on one Redis (n1, n2, n3)."""
    started = await asyncio.gather(*(start_node(redis, f"n{i}") for i in (1, 2, 3)))
    try:
        yield list(started)
    finally:
        await asyncio.gather(*(node.stop() for node in started))


@pytest.fixture
async def redis() -> AsyncIterator[RedisServer]:
    """A redis-server of the test's own (the fault tests stop and kill things)."""
    async for server in redis_running():
        yield server


@pytest.fixture
async def nodes(redis: RedisServer) -> AsyncIterator[list[Node]]:
    """Three nodes of the test's own."""
    async for started in three_nodes(redis):
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_redis() -> AsyncIterator[RedisServer]:
    """One redis-server for a module's tests that kill nothing."""
    async for server in redis_running():
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_nodes(shared_redis: RedisServer) -> AsyncIterator[list[Node]]:
    """Three nodes for a module's tests that kill nothing (each uses its own rooms)."""
    async for started in three_nodes(shared_redis):
        yield started


def token(session_id: str, **claims: Any) -> str:
    return mint(SECRET, session_id, **claims)


FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.3, jitter=False, max_attempts=40)


async def _sessions() -> AsyncIterator[list[Session]]:
    """Sessions made by a test; closed at its end."""
    made: list[Session] = []
    try:
        yield made
    finally:
        await asyncio.gather(*(s.close() for s in made), return_exceptions=True)


def session(made: list[Session], url: str, room: str, name: str, **kwargs: Any) -> Session:
    kwargs.setdefault("reconnect", FAST)
    kwargs.setdefault("request_timeout", 5.0)
    made.append(Session(url, token=token(room, **kwargs.pop("claims", {})), name=name, **kwargs))
    return made[-1]


@pytest.fixture
async def sessions() -> AsyncIterator[list[Session]]:
    """Sessions made by a test; closed at its end."""
    async for made in _sessions():
        yield made


@pytest_asyncio.fixture(loop_scope="module")
async def module_sessions() -> AsyncIterator[list[Session]]:
    """``sessions`` in the module's loop (with ``shared_nodes``)."""
    async for made in _sessions():
        yield made


class Recorder:
    """A listener that records payloads and lets a test await the n-th one."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def __call__(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def wait_for(self, n: int = 1, timeout: float = 10.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.items) < n:
                self._changed.clear()
                await self._changed.wait()
        return self.items


async def home_of(redis: RedisServer, room: str) -> str:
    """The node ID holding the room's lease (read with redis-cli's protocol, no client lib)."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis.url)
    try:
        value = await client.get(f"roomsignal:home:{room}")
    finally:
        await client.aclose()
    assert value is not None, f"room {room} has no home"
    return bytes(value).decode()


async def call(ws: ClientConnection, request_id: int, method: str, **params: Any) -> dict[str, Any]:
    """Send a request; the response to it (notifications before it are skipped)."""
    await ws.send(
        json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    )
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("id") == request_id:
                return dict(frame)


async def room_keys(redis: RedisServer, room: str) -> dict[str, int]:
    """The room's journal keys in Redis (docs/scaling.md, "Takeover"), each with its PTTL."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis.url)
    try:
        names = [f"roomsignal:room:{room}"]
        names += [bytes(k).decode() async for k in client.scan_iter(f"roomsignal:replay:{room}:*")]
        found = {}
        for name in names:
            ttl = int(await client.pttl(name))
            if ttl != -2:  # -2: no such key
                found[name] = ttl
        return found
    finally:
        await client.aclose()


async def room_hash(redis: RedisServer, room: str) -> dict[str, str]:
    """The room's hash: epoch, meta, m:PID (a seat), q:PID (its seq)."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis.url)
    try:
        raw = await client.hgetall(f"roomsignal:room:{room}")
    finally:
        await client.aclose()
    return {bytes(k).decode(): bytes(v).decode() for k, v in raw.items()}


async def wait_until(check: Any, timeout: float = 10.0) -> None:
    """Poll ``await check()`` until true: Redis and other processes send no events."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def send_surely(talker: Session, text: str, attempts: int = 200) -> None:
    """``sendMessage``; again when the request died with its connection (then it was not handled)."""
    for _ in range(attempts):
        try:
            await talker.send_message(text)
            return
        except (SessionErrorException, SessionStateError):
            continue
    raise AssertionError(f"could not send {text!r}")
