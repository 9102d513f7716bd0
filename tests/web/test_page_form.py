"""The page's room field (a token from /dev/token at Join) and its leave when the tab closes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from roomsignal import Session
from roomsignal.events import ParticipantLeftParams
from roomsignal.server import SignalingServer

from .conftest import SECRET, WAIT, open_page, page_joined, token

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_plain_url_has_a_room_field_that_gets_a_dev_token(
    server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, server)  # what `serve --dev` prints: no query at all
    assert await page.input_value("#room") == ""
    assert await page.input_value("#token") == ""
    await page.fill("#room", "book-club")
    await page.fill("#name", "ada")
    await page.click("#join")
    await page_joined(page)
    assert await page.evaluate("window.app.session.sessionId") == "book-club"
    assert await page.input_value("#room") == "book-club"
    assert (await page.input_value("#token")).count(".") == 2  # a JWT
    state = server.rooms.session_state("book-club")
    assert state is not None and [p.name for p in state.participants] == ["ada"]
    await page.close()


async def test_no_room_and_no_token_says_what_to_give(
    server: SignalingServer, context: Any
) -> None:
    page = await open_page(context, server)
    await page.click("#join")
    status = page.locator("#status")
    await page.wait_for_function(
        "document.getElementById('status').textContent.includes('give a token')",
        timeout=WAIT * 1000,
    )
    assert await status.get_attribute("data-state") == "idle"
    assert await page.evaluate("window.app.session") is None
    await page.close()


async def test_a_server_without_dev_tokens_is_named_at_join(context: Any) -> None:
    async with SignalingServer(port=0, secret=SECRET) as plain:
        page = await open_page(context, plain)
        await page.fill("#room", "book-club")
        await page.click("#join")
        await page.wait_for_function(
            "document.getElementById('status').textContent.includes('--dev')",
            timeout=WAIT * 1000,
        )
        assert plain.rooms.stats()["participants"] == 0
        await page.close()


async def test_closing_the_tab_leaves_the_room_at_once(
    server: SignalingServer, context: Any
) -> None:
    left: asyncio.Queue[ParticipantLeftParams] = asyncio.Queue()
    async with Session(server.url, token=token("lobby"), name="host", reconnect=None) as host:
        host.on_participant_left(left.put_nowait)
        page = await open_page(context, server, session="lobby", name="guest", join="1")
        await page_joined(page)
        guest_id = await page.evaluate("window.app.session.participantId")
        await page.close(run_before_unload=True)  # the tab closes: pagehide, then unload
        # within the test's wait, not after the server's 30 s resume window
        event = await asyncio.wait_for(left.get(), WAIT)
        assert (event.participant_id, event.reason) == (guest_id, "left")
        # the next visitor may take the name at once (no 104 against a waiting seat)
        again = await open_page(context, server, session="lobby", name="guest", join="1")
        await page_joined(again)
        assert await again.evaluate("window.app.errors.length") == 0
        await again.close()


async def test_the_server_field_takes_several_urls_and_refuses_a_bad_one(
    server: SignalingServer, context: Any
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"ws://127.0.0.1:{probe.getsockname()[1]}"
    page = await open_page(context, server)
    await page.fill("#server-url", "http://127.0.0.1:1")
    await page.fill("#room", "urls")
    await page.click("#join")
    await page.wait_for_function(
        "document.getElementById('status').textContent.includes('not a ws://')",
        timeout=WAIT * 1000,
    )
    assert await page.evaluate("window.app.session") is None
    await page.fill("#server-url", f"{dead}, {server.url}")  # the first is down
    await page.click("#join")
    await page_joined(page)
    assert await page.evaluate("window.app.session.url") == server.url
    await page.close()
