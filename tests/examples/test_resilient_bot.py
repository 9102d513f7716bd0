"""examples/resilient_bot.py: back in after a server restart, and after a dropped connection."""

from __future__ import annotations

import asyncio
import signal
import sys

from roomsignal import ReconnectPolicy
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

from .conftest import EXAMPLES, SECRET, free_port, load_example

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


async def _script(url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "resilient_bot.py"),
        *("--url", url, "--secret", SECRET, "--session", "lobby"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _until(process: asyncio.subprocess.Process, text: bytes) -> None:
    assert process.stdout is not None
    async with asyncio.timeout(20):
        while text not in (line := await process.stdout.readline()):
            assert line, f"the script ended before printing {text!r}"


async def test_the_script_waits_for_a_server_not_up_yet_and_leaves_on_ctrl_c() -> None:
    port = free_port()
    server = SignalingServer(port=port, secret=SECRET)
    process = await _script(f"ws://127.0.0.1:{port}")
    try:
        await _until(process, b"  attempt 2 in ")  # dialling, again and again
        await server.start()
        await _until(process, b"resilient-bot joined lobby")
        process.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
        assert server.rooms.stats()["participants"] == 0  # it left: no seat kept
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await server.close()
    assert b"Traceback" not in stderr, stderr.decode()
    assert process.returncode == 0
    assert stdout.decode().splitlines()[-1] == "left after 0 reconnection(s)"


async def test_ctrl_c_while_the_server_is_not_up_stops_without_a_traceback() -> None:
    process = await _script(f"ws://127.0.0.1:{free_port()}")
    try:
        await _until(process, b"  attempt 1 in ")
        process.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert b"Traceback" not in stderr, stderr.decode()
    assert process.returncode == 0
    assert stdout.decode().splitlines()[-1] == "stopped before joining"
