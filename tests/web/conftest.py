"""Fixtures for the browser tests: the system Chromium (one per module), live servers, pages.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright
(``executable_path``; Playwright's own browser download is never used). When
it is missing the tests are skipped, unless ``CI`` is set: then they fail.
Pages load over ``http://127.0.0.1`` (a secure context) from the reference
server itself, with a fake camera and no permission prompt. Every wait is
for a condition, bounded by a timeout; nothing sleeps a fixed time.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

CHROMIUM = os.environ.get("ROOMSIGNAL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SECRET = "web-test-secret-0123456789abcdef-012345"
WAIT = 10.0
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # Host candidates on this machine only: real addresses (no mDNS names), loopback too.
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


def token(session_id: str = "room", **claims: Any) -> str:
    """A token for ``session_id`` signed with the test secret."""
    return mint(SECRET, session_id, **claims)


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: CI must run the browser tests")
    pytest.skip(message)


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding ``clip.webm``, a 20 s test pattern made with PyAV."""
    from roomsignal.cli._demo_web import make_clip

    folder = tmp_path_factory.mktemp("media")
    make_clip(folder / "clip.webm", seconds=20.0)
    return folder


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    """One headless system Chromium for the whole test module."""
    _require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def server(clip_dir: Path) -> AsyncIterator[SignalingServer]:
    """A reference server with the page, dev tokens, the clip and simulation on."""
    async with SignalingServer(
        port=0,
        secret=SECRET,
        allow_simulation=True,
        dev_tokens=True,
        media_dir=str(clip_dir),
        ping_interval=1.0,
        ping_timeout=1.0,
        close_timeout=1.0,
    ) as srv:
        yield srv


@pytest_asyncio.fixture(loop_scope="module")
async def context(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser context (its own storage) for one test."""
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the page's CSP
    # forbids; test_serving checks the header itself.
    ctx = await browser.new_context(viewport={"width": 1100, "height": 760}, bypass_csp=True)
    try:
        yield ctx
    finally:
        await ctx.close()


def http_url(server: SignalingServer) -> str:
    """``http://127.0.0.1:port`` of ``server``."""
    return f"http://127.0.0.1:{server.port}"


async def open_page(context: Any, server: SignalingServer, **query: str) -> Any:
    """A page of ``server`` with ``query``, its app ready (camera and form filled)."""
    from urllib.parse import urlencode

    page = await context.new_page()
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    page.console_log = messages
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.requests = requests
    url = http_url(server) + "/" + (f"?{urlencode(query)}" if query else "")
    await page.goto(url)
    await page.wait_for_function("window.app !== undefined && window.app.ready !== undefined")
    await page.evaluate("window.app.ready")
    return page


async def http_get(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """``GET http://127.0.0.1:port/path``: status, headers (lower-case names), body."""
    import urllib.error
    import urllib.request

    def get() -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=WAIT) as answer:
                return (
                    answer.status,
                    {k.lower(): v for k, v in answer.headers.items()},
                    answer.read(),
                )
        except urllib.error.HTTPError as exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()

    import asyncio

    return await asyncio.to_thread(get)


async def page_joined(page: Any) -> None:
    """Wait until the page has joined, measured the clock, published and subscribed."""
    await page.wait_for_function("window.app.session?.state === 'joined'", timeout=WAIT * 1000)
    await page.evaluate("window.app.joined.then(() => true)")


async def wait_for_video(page: Any, participant_id: str, size: tuple[int, int]) -> str:
    """Wait until the page plays ``participant_id``'s video at ``size``; its CSS selector.

    Playing: its size is known, then its ``currentTime`` moves on by 0.3 s.
    """
    selector = f'figure[data-participant="{participant_id}"] video'
    await page.wait_for_function(
        f"document.querySelector('{selector}')?.videoWidth > 0", timeout=WAIT * 1000
    )
    shown = await page.evaluate(
        "(s) => { const v = document.querySelector(s);"
        " return [v.videoWidth, v.videoHeight, v.currentTime]; }",
        selector,
    )
    assert shown[:2] == list(size)
    await page.wait_for_function(
        f"document.querySelector('{selector}').currentTime > {shown[2] + 0.3}",
        timeout=WAIT * 1000,
    )
    return selector
