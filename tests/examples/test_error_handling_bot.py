"""examples/error_handling_bot.py: one reaction per error category."""

from __future__ import annotations

import asyncio

from roomsignal.server import SignalingServer

from .conftest import SECRET, load_example

bot = load_example("error_handling_bot")


async def test_reacts_to_each_of_the_six_categories(server: SignalingServer) -> None:
    reactions = await asyncio.wait_for(bot.main(server.url, SECRET), 15)
    by_category = {r.category: r for r in reactions}
    assert set(by_category) == set(bot.CATEGORIES)
    assert (by_category["user"].code, by_category["session"].code) == (105, 201)
    assert (by_category["media"].code, by_category["token"].code) == (303, 1100)
    assert (by_category["protocol"].code, by_category["unknown"].code) == (-32602, 4242)
    assert "publishing audio only" in by_category["user"].action
    assert "retry" in by_category["session"].action
    assert "dropped the exchange with" in by_category["media"].action
    assert "fresh" in by_category["token"].action
    assert "bug report" in by_category["protocol"].action
    assert "4242" in by_category["unknown"].action
    assert len(reactions) == 6  # one error each: every reaction fixed what it could


async def test_without_simulation_the_server_answers_method_not_found() -> None:
    async with SignalingServer(secret=SECRET) as server:
        reactions = await asyncio.wait_for(bot.main(server.url, SECRET), 15)
    assert [(r.category, r.code) for r in reactions] == [
        ("user", 105),
        ("media", 303),
        ("protocol", -32601),
        ("protocol", -32601),
        ("protocol", -32601),
        ("token", 1100),
    ]
