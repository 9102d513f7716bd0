"""Real video both ways between a browser and a Python aiortc bot, through the reference server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from roomsignal import Session
from roomsignal.cli._demo_web import HEIGHT, WIDTH, PatternPublisher
from roomsignal.server import SignalingServer

from ._peer import VideoSubscriber
from .conftest import WAIT, open_page, token

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_browser_and_aiortc_bot_exchange_video_both_ways(
    server: SignalingServer, context: Any
) -> None:
    bot = Session(server.url, token=token("media"), name="bot", reconnect=None)
    publisher = PatternPublisher(bot)
    subscriber = VideoSubscriber(bot)
    try:
        async with bot:
            await publisher.start()
            page = await open_page(context, server, session="media", name="browser", join="1")
            await page.wait_for_function(
                "window.app.session?.state === 'joined' && window.app.session._publishing !== null"
            )
            browser_id = await page.evaluate("window.app.session.participantId")

            # browser -> bot: the browser offers, trickles, the bot decodes frames.
            exchange = await subscriber.subscribe(browser_id, frames=10)
            async with asyncio.timeout(WAIT):
                await subscriber.got_frames[exchange].wait()
                await subscriber.end_of_candidates[exchange].wait()
            width, height = subscriber.frames[exchange][-1]
            assert width > 0 and height > 0
            trickled = subscriber.candidates[exchange]
            assert any(c.startswith("candidate:") for c in trickled), trickled
            assert trickled.count("") == 1  # end-of-candidates, once

            # bot -> browser: the page subscribed on its own; its video plays.
            selector = f'figure[data-participant="{bot.participant_id}"] video'
            await page.wait_for_function(
                f"document.querySelector('{selector}')?.videoWidth > 0", timeout=WAIT * 1000
            )
            size = await page.evaluate(
                "(s) => { const v = document.querySelector(s);"
                " return [v.videoWidth, v.videoHeight, v.currentTime]; }",
                selector,
            )
            assert size[:2] == [WIDTH, HEIGHT]
            await page.wait_for_function(
                f"document.querySelector('{selector}').currentTime > {size[2] + 0.3}",
                timeout=WAIT * 1000,
            )
            # The page saw the bot's track unmute: subscribe() resolved to a stream.
            assert await page.evaluate(f"document.querySelector('{selector}').srcObject !== null")
            await page.evaluate("window.app.session.leave()")
    finally:
        await subscriber.close()
        await publisher.close()
