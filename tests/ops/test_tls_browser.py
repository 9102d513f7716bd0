"""The page over https:// in Chromium, talking wss:// to the same port.

Chromium trusts the test's CA through a real trust path: a private HOME whose
NSS database (``~/.pki/nssdb``, made with Debian's ``certutil``) holds the CA
as a trusted root, the store Chromium reads on Linux. Nothing is ignored:
a Chromium whose store holds another CA refuses the page
(``ERR_CERT_AUTHORITY_INVALID``). Without ``certutil`` (libnss3-tools) or
Chromium the tests are skipped, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from roomsignal.server import SignalingServer
from roomsignal.server._tls import server_context

from .conftest import SECRET

CHROMIUM = os.environ.get("ROOMSIGNAL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CERTUTIL = shutil.which("certutil") or "/usr/bin/certutil"
WAIT = 10.0


def _require(path: str, package: str) -> None:
    if Path(path).exists():
        return
    message = f"{path} is missing (apt-get install {package})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: CI must run the TLS browser test")
    pytest.skip(message)


def _home_trusting(home: Path, ca_pem: Path) -> Path:
    """A HOME whose NSS database trusts ``ca_pem`` as a root for TLS servers."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(
        [CERTUTIL, "-N", "-d", f"sql:{nssdb}", "--empty-password"], check=True, timeout=30
    )
    subprocess.run(
        [
            CERTUTIL,
            "-A",
            "-d",
            f"sql:{nssdb}",
            "-n",
            "roomsignal-test",
            "-t",
            "C,,",
            "-i",
            str(ca_pem),
        ],
        check=True,
        timeout=30,
    )
    return home


@pytest.fixture
def launch(tmp_path: Path) -> Callable[[Path], AbstractAsyncContextManager[Any]]:
    _require(CHROMIUM, "chromium")
    _require(CERTUTIL, "libnss3-tools")

    @asynccontextmanager
    async def browser(ca_pem: Path) -> AsyncIterator[Any]:
        from playwright.async_api import async_playwright

        home = _home_trusting(tmp_path / f"home-{ca_pem.stem}", ca_pem)
        async with async_playwright() as pw:
            chromium = await pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                env={**os.environ, "HOME": str(home)},
                args=["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"],
            )
            try:
                yield chromium
            finally:
                await chromium.close()

    return browser


async def test_the_page_joins_over_https_and_wss(
    tls_files: dict[str, Path], launch: Callable[[Path], AbstractAsyncContextManager[Any]]
) -> None:
    context = server_context(tls_files["cert"], tls_files["key"])
    async with (
        SignalingServer(secret=SECRET, ssl=context, dev_tokens=True) as server,
        launch(tls_files["ca"]) as chromium,
    ):
        page = await (await chromium.new_context(bypass_csp=True)).new_page()
        response = await page.goto(f"https://localhost:{server.port}/?session=tls&name=web")
        assert response is not None and response.ok
        assert await page.evaluate("location.protocol") == "https:"
        await page.wait_for_function("window.app !== undefined && window.app.ready !== undefined")
        await page.evaluate("window.app.ready")
        assert await page.input_value("#server-url") == f"wss://localhost:{server.port}"
        result = await page.evaluate(
            """async (url) => {
                const { Session } = await import("/roomsignal.js");
                const answer = await fetch("/dev/token?session=tls&name=js");
                const { token } = await answer.json();
                const s = new Session(url, { token, name: "js" });
                await s.join();
                const state = s.state;
                await s.leave();
                return state;
            }""",
            f"wss://localhost:{server.port}",
        )
        assert result == "joined"
        assert server.rooms.counts.joins == {"full": 1}


async def test_chromium_refuses_the_page_without_the_ca(
    tls_files: dict[str, Path], launch: Callable[[Path], AbstractAsyncContextManager[Any]]
) -> None:
    context = server_context(tls_files["cert"], tls_files["key"])
    async with (
        SignalingServer(secret=SECRET, ssl=context) as server,
        launch(tls_files["other_ca"]) as chromium,
    ):
        page = await (await chromium.new_context()).new_page()
        with pytest.raises(Exception, match="ERR_CERT_AUTHORITY_INVALID"):
            await page.goto(f"https://localhost:{server.port}/")
