"""The page in a live room: errors by code and name, a resume with chat intact, a screenshot."""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from roomsignal import ErrorCode, Session
from roomsignal.media import Publisher, TestPatternTrack
from roomsignal.protocol import MessageReceivedParams
from roomsignal.server import SignalingServer

from .conftest import WAIT, open_page, page_joined, token

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "web-page.png"


async def _join_with(page: Any, name: str, jwt: str) -> None:
    await page.fill("#name", name)
    await page.fill("#token", jwt)
    await page.click("#join")


async def _shown(page: Any, code: ErrorCode) -> str:
    item = page.locator(f'#errors li[data-code="{int(code)}"]')
    await item.first.wait_for(timeout=WAIT * 1000)
    assert await item.first.get_attribute("data-name") == code.name
    return str(await item.first.locator("b").inner_text())


async def test_the_page_shows_104_206_1100_and_203_by_code_and_name(
    server: SignalingServer, context: Any
) -> None:
    alice = Session(server.url, token=token("errs"), name="alice", reconnect=None)
    host = Session(server.url, token=token("full", max_streaming=1), name="host", reconnect=None)
    moderator = Session(
        server.url,
        token=token("errs", roles=["moderator"]),
        name="mod",
        participant_type="viewer",
        reconnect=None,
    )
    async with alice, host, moderator:
        page = await open_page(context, server)

        await _join_with(page, "alice", token("errs"))  # the name is taken
        assert await _shown(page, ErrorCode.EXISTING_USER_IN_SESSION_ERROR_CODE) == (
            "104 EXISTING_USER_IN_SESSION_ERROR_CODE"
        )
        await _join_with(page, "second", token("full"))  # one streaming seat, taken by host
        assert await _shown(page, ErrorCode.SESSION_IS_FULL_ERROR_CODE) == (
            "206 SESSION_IS_FULL_ERROR_CODE"
        )
        await _join_with(page, "late", token("errs", ttl=-30))
        assert await _shown(page, ErrorCode.TOKEN_EXPIRED) == "1100 TOKEN_EXPIRED"

        await _join_with(page, "carol", token("errs"))
        await page_joined(page)
        await moderator.close_session("the film is over")
        assert await _shown(page, ErrorCode.SESSION_CLOSED_ERROR_CODE) == (
            "203 SESSION_CLOSED_ERROR_CODE"
        )
        await page.wait_for_function("document.getElementById('status').dataset.state === 'closed'")
        codes = await page.evaluate("window.app.errors.map((e) => [e.code, e.name, e.category])")
        assert codes == [
            [104, "EXISTING_USER_IN_SESSION_ERROR_CODE", "user"],
            [206, "SESSION_IS_FULL_ERROR_CODE", "session"],
            [1100, "TOKEN_EXPIRED", "token"],
            [203, "SESSION_CLOSED_ERROR_CODE", "session"],
        ]


async def test_the_page_resumes_after_a_connection_drop_with_no_chat_lost_or_doubled(
    server: SignalingServer, context: Any
) -> None:
    talker = Session(server.url, token=token("chat"), name="talker", reconnect=None)
    heard: asyncio.Queue[MessageReceivedParams] = asyncio.Queue()
    talker.on_message(heard.put_nowait)
    async with talker:
        page = await open_page(context, server, session="chat", name="viewer", join="1")
        await page_joined(page)
        before = await page.evaluate(
            "(() => { const s = window.app.session; window.seen = [];"
            " s.onReconnected((e) => window.seen.push(e));"
            " s.onDisconnected((e) => window.seen.push(e));"
            " return [s.participantId, s.lastSeq]; })()"
        )
        sent = []
        for i in range(10):
            sent.append(f"m{i}")
            await talker.send_message(f"m{i}")
        await page.wait_for_function("window.app.messages.length === 10")

        await page.evaluate("window.app.session.simulateScenario('connectionDrop')")
        for i in range(10, 20):  # while the page is away: buffered, then replayed
            sent.append(f"m{i}")
            await talker.send_message(f"m{i}")
        await page.wait_for_function(
            "document.getElementById('status').dataset.state === 'joined'"
            " && window.seen.length === 2"
        )
        for i in range(20, 30):
            sent.append(f"m{i}")
            await talker.send_message(f"m{i}")
        await page.wait_for_function("window.app.messages.length >= 30")

        seen = await page.evaluate("window.seen")
        assert seen[0]["willReconnect"] is True
        assert seen[1]["resumed"] is True and seen[1]["stateReset"] is False
        assert await page.evaluate("window.app.session.participantId") == before[0]
        texts = await page.locator("#chat-log li").all_inner_texts()
        assert texts == [f"talker: {m}" for m in sent]
        assert await page.evaluate("window.app.messages.map((m) => m.text)") == sent

        await page.fill("#chat-input", "back again")
        await page.click("#chat-send")
        async with asyncio.timeout(WAIT):
            message = await heard.get()
        assert (message.text, message.from_) == ("back again", before[0])
        await page.locator("#chat-log li.mine").wait_for()
        assert heard.empty()
        await page.evaluate("window.app.session.leave()")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_a_screenshot_of_the_page_in_a_live_room(
    server: SignalingServer, context: Any, tmp_path: Path
) -> None:
    """A live room as the page shows it (the README's screenshot is test_demo_web's)."""
    camera = Session(server.url, token=token("movie-night"), name="camera-bot", reconnect=None)
    sync = Session(
        server.url,
        token=token("movie-night", roles=["synchronizer"]),
        name="sync-bot",
        participant_type="viewer",
        reconnect=None,
    )
    publisher = Publisher(camera, video=TestPatternTrack(320, 180))
    try:
        async with camera, sync:
            await publisher.start()
            await sync.send_sync_data(3.0, True, media_id="clip.webm")
            page = await open_page(context, server, session="movie-night", name="ada", join="1")
            await page_joined(page)
            remote = f'figure[data-participant="{camera.participant_id}"] video'
            await page.wait_for_function(
                f"document.querySelector('{remote}')?.videoWidth > 0"
                " && document.getElementById('local-video').videoWidth > 0"
                " && !document.getElementById('shared-player').paused"
                " && document.getElementById('shared-player').currentTime > 3.5",
                timeout=WAIT * 1000,
            )
            await camera.send_message("popcorn ready?")
            await page.fill("#chat-input", "yes, starting now")
            await page.click("#chat-send")
            await page.wait_for_function("document.querySelectorAll('#chat-log li').length === 2")
            origin = f"http://127.0.0.1:{server.port}/"
            outside = [u for u in page.requests if not u.startswith((origin, "data:", "blob:"))]
            assert outside == [], "the page loaded something from outside the server"
            assert f"{origin}media/clip.webm" in page.requests
            shot = tmp_path / "web-page.png"
            await page.screenshot(path=str(shot))
            await page.evaluate("window.app.session.leave()")
    finally:
        await publisher.close()
    assert _png_size(shot.read_bytes()) == (1100, 760)
    # the README's screenshot is test_demo_web's: the demo as a visitor sees it
    assert _png_size(SCREENSHOT.read_bytes()) == (1100, 760)
    assert "docs/web-page.png" in (ROOT / "README.md").read_text(encoding="utf-8")


async def test_the_page_uses_ice_servers_only_when_given(
    server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, server, session="ice", name="plain", join="1")
    await page_joined(page)
    assert await page.evaluate("window.app.session.iceServers") == []
    # Alone in its room, so no exchange starts and the server is never contacted;
    # only that the page hands it on as given is checked (and it is this machine's).
    servers = [{"urls": "stun:127.0.0.1:3478"}]
    page = await open_page(
        context, server, session="ice-alone", name="given", ice=json.dumps(servers), join="1"
    )
    await page_joined(page)
    assert await page.evaluate("window.app.session.iceServers") == servers
    bad = await open_page(context, server, session="ice", name="bad", ice="[nope", join="1")
    assert "not a JSON list" in await bad.inner_text("#status")
    assert await bad.evaluate("window.app.session") is None
