"""examples/resilient_bot.py: back in after a server restart, and after a dropped connection."""

from __future__ import annotations

import asyncio

from roomsignal import ReconnectPolicy
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

from .conftest import SECRET, load_example

resilient = load_example("resilient_bot")
FAST = ReconnectPolicy(max_attempts=200, initial_delay=0.01, max_delay=0.05)


async def test_survives_a_server_restart_on_the_same_port() -> None:
    first = SignalingServer(secret=SECRET)
    await first.start()
    port = first.port
    publishing = asyncio.Event()
    stop = asyncio.Event()
    task = asyncio.create_task(
        resilient.main(
            first.url, mint(SECRET, "lobby"), publishing=publishing, stop=stop, policy=FAST
        )
    )
    second = SignalingServer(port=port, secret=SECRET)
    try:
        await asyncio.wait_for(publishing.wait(), 5)
        publishing.clear()
        await first.close(graceful=False)  # a crash: every TCP connection aborted
        await second.start()  # a new process would start with empty rooms, as this one
        await asyncio.wait_for(publishing.wait(), 10)  # back in, and publishing again
        state = second.rooms.session_state("lobby")
        stop.set()
        back = await asyncio.wait_for(task, 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await first.close()
        await second.close()
    assert len(back) == 1
    assert back[0].resumed is False
    assert back[0].state_reset is True
    assert state is not None
    [me] = state.participants
    assert me.name == "resilient-bot"
    assert me.participant_id == back[0].participant_id
    assert me.streams is not None and me.streams.audio and me.streams.video  # published again


async def test_resumes_after_a_dropped_connection(server: SignalingServer) -> None:
    back = await asyncio.wait_for(
        resilient.main(
            server.url, mint(SECRET, "lobby"), reconnects=1, drop_after=0.0, policy=FAST
        ),
        10,
    )
    assert len(back) == 1
    assert back[0].resumed is True
    assert back[0].state_reset is False
