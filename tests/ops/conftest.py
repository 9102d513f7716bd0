"""Fixtures for the operations tests: a real Prometheus, TLS certificates made with trustme.

Prometheus is Debian's ``/usr/bin/prometheus``, started by the test on
loopback with a private config and data directory and a short scrape
interval, and stopped by the pid it started. When it is missing the tests
are skipped, unless ``CI`` is set: then they fail (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from cli.conftest import Proc
from cli.conftest import spawn as cli_spawn
from roomsignal._processes import stop_process

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SECRET = "ops-test-secret-0123456789abcdef012345"
SCRAPE = "200ms"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def prometheus_or_skip() -> None:
    if os.path.exists(PROMETHEUS):
        return
    message = f"{PROMETHEUS} is missing (apt-get install prometheus)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: CI must run the Prometheus tests")
    pytest.skip(message)


async def http_get(port: int, path: str, *, context: ssl.SSLContext | None = None) -> bytes:
    """A plain HTTP/1.1 GET on loopback; the whole response (status line, headers, body)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost" if context else None
    )
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    async with asyncio.timeout(10):
        response = await reader.read()
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()
    return response


def body_of(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[1]


class Prometheus:
    """A Prometheus process scraping ``targets`` (host:port) every ``SCRAPE``."""

    def __init__(self, folder: Path, targets: list[str]) -> None:
        self.folder = folder
        self.port = free_port()
        self.targets = targets
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        config = self.folder / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE}\n"
            f"  scrape_timeout: {SCRAPE}\n"
            "scrape_configs:\n"
            "  - job_name: roomsignal\n"
            f"    static_configs: [{{targets: {json.dumps(self.targets)}}}]\n"
        )
        self.process = await asyncio.create_subprocess_exec(
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(20):
            while True:
                with contextlib.suppress(OSError):
                    if (await http_get(self.port, "/-/ready")).startswith(b"HTTP/1.1 200"):
                        return
                if self.process.returncode is not None:
                    raise RuntimeError("prometheus exited at start")
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self.process is not None:
            await stop_process(self.process, 10)
        self.process = None

    async def query(self, promql: str) -> list[dict[str, Any]]:
        """The result vector of an instant query through Prometheus' HTTP API."""
        path = "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        answer = json.loads(body_of(await http_get(self.port, path)))
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    async def wait_for(self, promql: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Poll ``promql`` until it has a result: Prometheus sends no events."""
        async with asyncio.timeout(timeout):
            while True:
                result = await self.query(promql)
                if result:
                    return result
                await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def prometheus(folder: Path, targets: list[str]) -> AsyncIterator[Prometheus]:
    prometheus_or_skip()
    prom = Prometheus(folder, targets)
    await prom.start()
    try:
        yield prom
    finally:
        await prom.stop()


@pytest.fixture(scope="session")
def ca() -> Any:
    """A certificate authority of the tests' own (trustme)."""
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def tls_files(ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """PEM files: ``cert`` (chain) and ``key`` for localhost/127.0.0.1, the ``ca``, another CA."""
    import trustme

    folder = tmp_path_factory.mktemp("tls")
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    files = {
        "cert": folder / "cert.pem",
        "key": folder / "key.pem",
        "ca": folder / "ca.pem",
        "other_ca": folder / "other-ca.pem",
    }
    leaf.private_key_pem.write_to_path(str(files["key"]))
    with files["cert"].open("wb") as out:
        for blob in leaf.cert_chain_pems:
            out.write(blob.bytes())
    ca.cert_pem.write_to_path(str(files["ca"]))
    trustme.CA().cert_pem.write_to_path(str(files["other_ca"]))
    yield files


ROOT = Path(__file__).resolve().parents[2]


def spawn(*args: str) -> contextlib.AbstractAsyncContextManager[Proc]:
    """Start ``python -m roomsignal ARGS`` (secret from ``SECRET``); killed on exit."""
    return cli_spawn(*args, ROOMSIGNAL_SECRET=SECRET)
