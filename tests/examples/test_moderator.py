"""examples/moderator.py: waits for the members, then closes the session for everyone."""

from __future__ import annotations

import asyncio
import signal
import sys

from roomsignal import Session, SessionError, SessionStateError
from roomsignal.protocol import SessionClosedParams
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

from .conftest import EXAMPLES, SECRET, load_example

moderator = load_example("moderator")


async def test_moderator_closes_the_session_for_every_member(server: SignalingServer) -> None:
    errors: dict[str, list[int]] = {"alice": [], "bob": []}
    closed: dict[str, asyncio.Future[SessionClosedParams]] = {}
    members = []
    for name in errors:
        member = Session(server.url, token=mint(SECRET, "lobby"), name=name, reconnect=None)
        closed[name] = asyncio.get_running_loop().create_future()
        member.on_session_error(lambda e, name=name: errors[name].append(e.code))
        member.on_session_closed(closed[name].set_result)
        await member.connect()
        members.append(member)
    try:
        token = mint(SECRET, "lobby", roles=["moderator"])
        outcome = await asyncio.wait_for(moderator.main(server.url, token, members=2, grace=0), 10)
        for name in errors:
            assert (await asyncio.wait_for(closed[name], 5)).reason == outcome.closed.reason
    finally:
        for member in members:
            await member.close()
    assert outcome.closed_out == ["alice", "bob"]
    assert [e.code for e in outcome.errors] == [203]
    assert errors == {"alice": [203], "bob": [203]}
    late = Session(server.url, token=mint(SECRET, "lobby"), name="late")
    try:
        await late.connect()
    except SessionStateError as exc:
        error: SessionError = exc.error
        assert error.code == 203
    else:  # pragma: no cover
        raise AssertionError("joining a closed session should fail with 203")
    finally:
        await late.close()


async def test_without_the_role_closing_gets_106(server: SignalingServer) -> None:
    outcome = await asyncio.wait_for(
        moderator.main(server.url, mint(SECRET, "lobby"), members=0, grace=0), 10
    )
    assert outcome.closed is None
    assert [e.code for e in outcome.errors] == [106]


async def test_moderator_runs_as_a_script(server: SignalingServer) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "moderator.py"),
        "--url",
        server.url,
        "--secret",
        SECRET,
        "--session",
        "script-room",
        "--members",
        "0",
        "--grace",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, stderr.decode()
    assert "session script-room closed" in stdout.decode()


async def test_ctrl_c_while_waiting_leaves_without_a_traceback(server: SignalingServer) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "moderator.py"),
        *("--url", server.url, "--secret", SECRET, "--session", "lobby", "--members", "3"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(20):
            while b"waiting for 3 member(s)" not in await process.stdout.readline():
                pass
        process.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert b"Traceback" not in stderr, stderr.decode()
    assert process.returncode == 130
    assert "left the session without closing it" in stdout.decode()
    assert server.rooms.stats()["participants"] == 0  # a leave: no seat kept for a resume
    assert server.rooms.stats()["closedSessions"] == 0  # and the session was not closed
