"""examples/synchronizer.py and follower.py: a follower tracks the broadcast position."""

from __future__ import annotations

import asyncio

from roomsignal import Session
from roomsignal.protocol import SyncDataParams
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

from .conftest import SECRET, load_example

synchronizer = load_example("synchronizer")
follower = load_example("follower")


async def test_follower_tracks_the_synchronizer(server: SignalingServer) -> None:
    stop = asyncio.Event()
    first: asyncio.Future[SyncDataParams] = asyncio.get_running_loop().create_future()
    watcher = Session(server.url, token=mint(SECRET, "cinema"), name="watcher")
    watcher.on_sync_data(lambda e: first.done() or first.set_result(e))
    async with watcher:
        sync_task = asyncio.create_task(
            synchronizer.main(
                server.url,
                mint(SECRET, "cinema", roles=["synchronizer"]),
                media_id="film-1",
                interval=0.05,
                pause_every=4,
                stop=stop,
            )
        )
        try:
            await asyncio.wait_for(first, 5)  # the film is playing: the follower joins mid-film
            tracked = await asyncio.wait_for(
                follower.main(server.url, mint(SECRET, "cinema"), updates=6), 10
            )
        finally:
            stop.set()
            sent = await asyncio.wait_for(sync_task, 5)
    assert sent >= 6
    assert len(tracked) == 6
    # It started from the session's syncState, so even the first update has a drift.
    assert all(t.drift is not None for t in tracked)
    steady = [t for t in tracked if not t.seeked]
    assert steady, "some updates should need no seek"
    assert all(abs(t.drift) < 0.25 for t in steady)
    assert {t.playing for t in tracked} == {True, False}  # it followed a pause too
    positions = [t.position for t in tracked]
    assert positions == sorted(positions)


async def test_without_the_role_the_synchronizer_gets_106_and_stops(
    server: SignalingServer,
) -> None:
    sent = await asyncio.wait_for(
        synchronizer.main(server.url, mint(SECRET, "cinema"), interval=0.05, updates=3), 5
    )
    assert sent == 0
