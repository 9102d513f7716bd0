"""roomsignal.js's autoSubscribe, peer to peer: the page watches every publisher by itself.

And a ``subscribe()`` of a participant already subscribed to (by the app or by
autoSubscribe) shares that subscription: the same stream, no second request.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("aiortc", reason="the media extra is not installed")

from roomsignal import Session
from roomsignal.cli._demo_web import HEIGHT, WIDTH
from roomsignal.media import Publisher, TestPatternTrack
from roomsignal.server import SignalingServer

from .conftest import WAIT, open_page, page_joined, token

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_the_page_watches_publishers_before_and_after_it_and_shares_a_subscribe(
    server: SignalingServer, context: Any
) -> None:
    early = Session(server.url, token=token("auto"), name="early", reconnect=None)
    late = Session(server.url, token=token("auto"), name="late", reconnect=None)
    first = Publisher(early, video=TestPatternTrack(WIDTH, HEIGHT))
    second = Publisher(late, video=TestPatternTrack(WIDTH, HEIGHT))
    try:
        await early.connect()
        await first.start()
        page = await open_page(context, server, session="auto", name="browser", join="1")
        await page_joined(page)
        assert await page.evaluate("window.app.session.autoSubscribe") is True
        await page.evaluate(
            "() => { window.subscribes = 0; const s = window.app.session;"
            " const request = s.request.bind(s);"
            " s.request = (m, p) => { if (m === 'subscribe') window.subscribes++;"
            " return request(m, p); }; }"
        )
        await late.connect()  # comes after the page, publishes: watched by itself
        await second.start()
        for bot in (early, late):
            selector = f'figure[data-participant="{bot.participant_id}"] video'
            await page.wait_for_function(
                f"document.querySelector('{selector}')?.videoWidth > 0", timeout=WAIT * 1000
            )
        assert await page.evaluate("window.subscribes") == 1  # late's, by autoSubscribe
        # The app subscribes to one already watched: the same stream, no request, no 303.
        same = await page.evaluate(
            "async (id) => { const s = window.app.session;"
            " const a = await s.subscribe(id); const b = await s.subscribe(id);"
            " const shown = document.querySelector(`figure[data-participant='${id}'] video`);"
            " return a === b && a === shown.srcObject; }",
            early.participant_id,
        )
        assert same is True
        assert await page.evaluate("window.subscribes") == 1
        assert await page.evaluate("window.app.errors.length") == 0
        await page.evaluate("window.app.session.leave()")
    finally:
        await second.close()
        await first.close()
        await late.close()
        await early.close()
