"""Real video both ways between a browser and a Python aiortc bot, through the reference server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from roomsignal import Session
from roomsignal.cli._demo_web import HEIGHT, WIDTH
from roomsignal.media import Publisher, Subscriber, TestPatternTrack
from roomsignal.protocol import IceCandidateNotificationParams
from roomsignal.server import SignalingServer

from .conftest import SECRET, WAIT, open_page, page_joined, token, wait_for_video

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_browser_and_aiortc_bot_exchange_video_both_ways(
    server: SignalingServer, context: Any
) -> None:
    bot = Session(server.url, token=token("media"), name="bot", reconnect=None)
    publisher = Publisher(bot, video=TestPatternTrack(WIDTH, HEIGHT))
    subscriber = Subscriber(bot)
    # what the browser trickled, per exchange, as the bot's session saw it
    trickled_by: dict[str, list[str]] = {}
    ended: dict[str, asyncio.Event] = {}

    def on_candidate(event: IceCandidateNotificationParams) -> None:
        trickled_by.setdefault(event.exchange_id, []).append(event.candidate)
        if event.candidate == "":
            ended.setdefault(event.exchange_id, asyncio.Event()).set()

    bot.on_ice_candidate(on_candidate)
    try:
        async with bot:
            await publisher.start()
            page = await open_page(context, server, session="media", name="browser", join="1")
            await page.wait_for_function(
                "window.app.session?.state === 'joined' && window.app.session._publishing !== null"
            )
            browser_id = await page.evaluate("window.app.session.participantId")

            # browser -> bot: the browser offers with no candidates in its SDP and
            # trickles them; roomsignal.media's subscriber applies them and decodes.
            subscription = await subscriber.subscribe(browser_id, timeout=WAIT)
            await subscription.wait_for_frames(10, timeout=WAIT)
            async with asyncio.timeout(WAIT):
                await ended.setdefault(subscription.exchange_id, asyncio.Event()).wait()
            trickled = trickled_by[subscription.exchange_id]
            counts = subscription.frames
            assert counts.video_frames >= 10
            assert counts.width and counts.height
            assert any(c.startswith("candidate:") for c in trickled), trickled
            assert trickled.count("") == 1  # end-of-candidates, once
            # No ICE servers unless given: host candidates only, nothing leaves the machine.
            assert all(" typ host" in c for c in trickled if c), trickled
            servers = await page.evaluate(
                "[...window.app.session._outgoing.values(), ...[...window.app.session._incoming"
                ".values()].map((s) => s.pc)].map((pc) => pc.getConfiguration().iceServers.length)"
            )
            assert servers == [0, 0]

            # bot -> browser: the page subscribed on its own; its video plays.
            selector = await wait_for_video(page, bot.participant_id or "", (WIDTH, HEIGHT))
            # The page saw the bot's track unmute: subscribe() resolved to a stream.
            assert await page.evaluate(f"document.querySelector('{selector}').srcObject !== null")
            await page.evaluate("window.app.session.leave()")
    finally:
        await subscriber.close()
        await publisher.close()


async def test_after_a_state_reset_the_page_publishes_and_watches_again(
    clip_dir: Any, context: Any
) -> None:
    # resume_window 0: a dropped seat ends at once, so the rejoin is a fresh join.
    async with SignalingServer(
        port=0, secret=SECRET, allow_simulation=True, dev_tokens=True, resume_window=0
    ) as server:
        bot = Session(server.url, token=token("reset"), name="bot", reconnect=None)
        publisher = Publisher(bot, video=TestPatternTrack(WIDTH, HEIGHT))
        subscriber = Subscriber(bot)
        published: asyncio.Queue[str] = asyncio.Queue()
        bot.on_stream_published(lambda event: published.put_nowait(event.participant_id))
        try:
            async with bot:
                await publisher.start()
                page = await open_page(context, server, session="reset", name="browser", join="1")
                await page_joined(page)
                first = await asyncio.wait_for(published.get(), WAIT)
                await page.evaluate(
                    # A function, not an expression: Playwright would call the listener it returns.
                    "() => { window.seen = [];"
                    " window.app.session.onReconnected((e) => window.seen.push(e)); }"
                )
                await page.evaluate("window.app.session.simulateScenario('connectionDrop')")
                await page.wait_for_function("window.seen.length === 1", timeout=WAIT * 1000)
                again = await page.evaluate("window.seen[0]")
                assert again["resumed"] is False and again["stateReset"] is True
                second = await asyncio.wait_for(published.get(), WAIT)  # published again
                assert second == again["participantId"] != first
                subscription = await subscriber.subscribe(second, timeout=WAIT)
                await subscription.wait_for_frames(5, timeout=WAIT)
                selector = f'figure[data-participant="{bot.participant_id}"] video'
                await page.wait_for_function(
                    f"document.querySelector('{selector}')?.videoWidth > 0", timeout=WAIT * 1000
                )
                assert await page.locator("#remote-videos figure").count() == 1
                await page.evaluate("window.app.session.leave()")
        finally:
            await subscriber.close()
            await publisher.close()
