"""``roomsignal demo --web`` as a real process, opened in the browser: a live room at once.

It also takes the README's screenshot (docs/web-page.png, rewritten with
``ROOMSIGNAL_UPDATE_SCREENSHOT=1``): what a visitor of the demo sees, nothing
staged, the camera bot's greeting and the visitor's own line in the chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import WAIT

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCREENSHOT = Path(ROOT) / "docs" / "web-page.png"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_demo_web_prints_a_url_that_joins_a_live_room(context: Any, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ROOMSIGNAL_SECRET"}
    env["PYTHONUNBUFFERED"] = "1"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "roomsignal",
        "demo",
        "--web",
        "--port",
        "0",
        "--seconds",
        "60",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        async with asyncio.timeout(WAIT * 2):
            while not (line := (await process.stdout.readline()).decode()).startswith(
                "roomsignal demo --web: open "
            ):
                assert line, (await process.stderr.read()).decode()
        url = line.split("open ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:") and "join=1" in url
        url += "&name=ada"  # a name for the screenshot, instead of guest-xxxxx
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_function("window.app?.session?.state === 'joined'", timeout=WAIT * 1000)
        names = await page.evaluate(
            "[...window.app.session.participants.values()].map((p) => p.name).sort()"
        )
        assert names == ["camera-bot", "sync-bot"]
        await page.wait_for_function(
            "[...document.querySelectorAll('#remote-videos video')].some((v) => v.videoWidth > 0)"
            " && !document.getElementById('shared-player').paused"
            " && document.getElementById('shared-player').videoWidth > 0",
            timeout=WAIT * 1000,
        )
        # the camera bot greets each newcomer; the visitor answers
        await page.wait_for_function(
            "[...document.querySelectorAll('#chat-log li')]"
            ".some((li) => li.textContent.startsWith('camera-bot: hi '))",
            timeout=WAIT * 1000,
        )
        await page.fill("#chat-input", "popcorn ready!")
        await page.click("#chat-send")
        await page.wait_for_function("document.querySelectorAll('#chat-log li').length === 2")
        chat = await page.locator("#chat-log li").all_inner_texts()
        assert chat[1] == "you: popcorn ready!", chat
        assert await page.locator("#errors li").count() == 0
        shot = tmp_path / "web-page.png"
        await page.screenshot(path=str(shot))
        assert _png_size(shot.read_bytes()) == (1100, 760)
        if os.environ.get("ROOMSIGNAL_UPDATE_SCREENSHOT"):
            shutil.copyfile(shot, SCREENSHOT)
        await page.evaluate("window.app.session.leave()")
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(WAIT):
            rest = (await process.stdout.read()).decode()
            assert await process.wait() == 0
        assert "stopped" in rest
        errors = (await process.stderr.read()).decode()
        assert "Traceback" not in errors, errors
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
