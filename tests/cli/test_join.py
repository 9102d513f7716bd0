"""``roomsignal join`` as a real process: every event printed as it arrives, clean leave."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

from roomsignal import Session
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

from .conftest import SECRET, one_clear_line, spawn


def _event(line: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(line)
    return data


def _is(name: str) -> Any:
    return lambda line: _event(line)["event"] == name


async def test_join_json_prints_events_until_the_session_is_closed(
    server: SignalingServer,
) -> None:
    token = mint(SECRET, "room")
    async with spawn("join", server.url, "--token", token, "--name", "watcher", "--json") as proc:
        connected = _event(await proc.line(_is("connected")))
        assert connected["sessionId"] == "room"
        watcher_id = connected["participantId"]
        host_token = mint(SECRET, "room", roles=["moderator", "synchronizer"])
        async with Session(server.url, token=host_token, name="host", reconnect=None) as host:
            await proc.line(_is("participant_joined"))
            await host.publish(audio=True, video=False)
            await host.send_message("hello", to=[watcher_id])
            await host.send_sync_data(42.0, True, media_id="film")
            await proc.line(_is("sync_data"))
            await host.close_session("done")
        assert await proc.wait() == 0  # the session ended: join exits by itself
    events = [_event(line) for line in proc.stdout]  # every line is one JSON object
    names = [event["event"] for event in events]
    assert names[:5] == [
        "connected",
        "participant_joined",
        "stream_published",
        "message",
        "sync_data",
    ]
    assert {"session_error", "session_closed", "disconnected"} <= set(names)
    assert [e["code"] for e in events if e["event"] == "session_error"] == [203]
    by_name = {event["event"]: event for event in events}
    assert by_name["participant_joined"]["participant"]["name"] == "host"
    assert by_name["message"]["fromName"] == "host"  # the sender's id, and its name beside it
    assert by_name["sync_data"]["fromName"] == "host"
    assert by_name["stream_published"]["audio"] is True
    assert by_name["message"]["text"] == "hello"
    assert by_name["message"]["private"] is True
    assert by_name["sync_data"]["position"] == 42.0
    assert by_name["session_error"]["code"] == 203
    assert by_name["session_error"]["name"] == "SESSION_CLOSED_ERROR_CODE"
    assert by_name["session_closed"]["reason"] == "done"
    assert proc.stderr == []


async def test_join_text_leaves_cleanly_on_sigint(server: SignalingServer) -> None:
    token = mint(SECRET, "room")
    async with spawn("join", server.url, "--token", token, "--name", "watcher") as proc:
        await proc.line(lambda line: " connected " in line)
        async with Session(server.url, token=mint(SECRET, "room"), name="peer") as peer:
            await proc.line(
                lambda line: " participant_joined " in line and "participant=peer" in line
            )
            left = peer.wait_for_error  # keep a reference: the session is alive here
            assert left is not None
            proc.process.send_signal(signal.SIGINT)
            assert await proc.wait() == 0
            await proc.line(lambda line: " left " in line)
            # the server saw a leave, not a drop: nobody keeps the watcher's seat
            state = await peer.get_state()
            assert [p.name for p in state.participants] == ["peer"]
    assert proc.stderr == []
    assert not any(line.startswith("{") for line in proc.stdout)


async def test_join_says_so_when_the_connection_is_lost_for_good() -> None:
    server = SignalingServer(secret=SECRET)
    await server.start()
    try:
        args = ["join", server.url, "--token", mint(SECRET, "room"), "--name", "w"]
        async with spawn(*args, "--no-reconnect", "--json") as proc:
            await proc.line(_is("connected"))
            await server.close(graceful=False)  # a crash: no close frame
            assert await proc.wait() == 1
            assert len(proc.stderr) == 1
            assert "lost" in proc.stderr[0]
            events = [_event(line) for line in proc.stdout]
            assert [e["event"] for e in events[:2]] == ["connected", "disconnected"]
            assert events[1]["willReconnect"] is False
            # the client's 903 may come after, unless join closed the session first
            assert all(e["code"] == 903 for e in events[2:])
    finally:
        await server.close()


async def test_join_sends_typed_lines_as_chat_and_to_name_privately(
    server: SignalingServer,
) -> None:
    from roomsignal.protocol import MessageReceivedParams

    got: asyncio.Queue[MessageReceivedParams] = asyncio.Queue()
    async with Session(server.url, token=mint(SECRET, "room"), name="alice", reconnect=None) as a:
        a.on_message(got.put_nowait)
        async with Session(server.url, token=mint(SECRET, "room"), name="bob") as bob:
            bob_got: asyncio.Queue[MessageReceivedParams] = asyncio.Queue()
            bob.on_message(bob_got.put_nowait)
            left: asyncio.Queue[str] = asyncio.Queue()
            bob.on_participant_left(lambda event: left.put_nowait(event.reason))
            token = mint(SECRET, "room")
            args = ["join", server.url, "--token", token, "--name", "talker", "--json"]
            async with spawn(*args, "--reconnect-attempts", "2", stdin=True) as proc:
                await proc.line(_is("connected"))
                stdin = proc.process.stdin
                assert stdin is not None
                stdin.write(b"hello everyone\n/to alice just for you\n/to nobody hm\n")
                stdin.write(b"/to\n/to alice\n/me waves\n//slash first\n")
                await stdin.drain()
                async with asyncio.timeout(10):
                    first, second, third = await got.get(), await got.get(), await got.get()
                    to_bob = [await bob_got.get(), await bob_got.get()]
                assert (first.text, first.private) == ("hello everyone", False)
                assert (second.text, second.private) == ("just for you", True)
                assert (third.text, third.private) == ("/slash first", False)
                assert [(m.text, m.private) for m in to_bob] == [
                    ("hello everyone", False),
                    ("/slash first", False),
                ]
                await proc.line(lambda line: "no participant named 'nobody'" in line, stderr=True)
                await proc.line(lambda line: "unknown command /me" in line, stderr=True)
                await a.send_message("still there?")
                line = await proc.line(lambda line: "still there?" in line)
                assert _event(line)["event"] == "message"
                assert _event(line)["fromName"] == "alice"
                stdin.close()  # the end of stdin: join leaves and exits
                assert await proc.wait() == 0
                async with asyncio.timeout(10):
                    assert await left.get() == "left"  # a leave, not a drop
        async with asyncio.timeout(10):  # bob heard nothing more: /to alone was not sent
            assert (await bob_got.get()).text == "still there?"
    # two usage errors (/to alone, /to NAME without text), one each, nothing sent
    assert proc.stderr.count("roomsignal join: usage: /to NAME text") == 2
    assert len(proc.stderr) == 4, proc.stderr
    echoes = [_event(line) for line in proc.stdout if _event(line)["event"] == "message"]
    own = [(e["text"], e["private"], e.get("toNames")) for e in echoes if e["fromName"] == "talker"]
    assert own == [
        ("hello everyone", False, None),
        ("just for you", True, ["alice"]),
        ("/slash first", False, None),
    ]
    assert _event(proc.stdout[-1]) | {"time": 0} == {"event": "left", "time": 0, "name": "talker"}


async def test_join_text_shows_names_in_one_format(server: SignalingServer) -> None:
    token = mint(SECRET, "room")
    async with spawn("join", server.url, "--token", token, "--name", "w", stdin=True) as proc:
        await proc.line(lambda line: " connected " in line)
        host = Session(server.url, token=mint(SECRET, "room"), name="host", reconnect=None)
        async with host:
            await proc.line(lambda line: " participant_joined " in line)
            await host.send_message("hi w")
            await proc.line(lambda line: " message " in line and "from=host" in line)
        await proc.line(lambda line: " participant_left " in line)
        stdin = proc.process.stdin
        assert stdin is not None
        stdin.write(b"bye\n")
        await stdin.drain()
        await proc.line(lambda line: " message " in line and "from=w " in line)
        stdin.close()
        assert await proc.wait() == 0
    by_event = {line.split()[1]: line.split(maxsplit=2)[2] for line in proc.stdout}
    assert by_event["connected"].startswith("sessionId=room participant=w others=[]")
    assert by_event["participant_joined"] == "participant=host type=full #1"
    assert by_event["message"] == "from=w text=bye private=false"  # the last: our own echo
    assert by_event["participant_left"] == "participant=host reason=left #3"
    assert not any("p_" in line for line in proc.stdout if " message " in line)
    assert proc.stdout[-1].split()[1:] == ["left", "name=w"]


async def test_a_refused_join_is_one_line_on_stderr_only(server: SignalingServer) -> None:
    token = mint(SECRET, "room")
    async with Session(server.url, token=token, name="taken", reconnect=None):
        for extra in ([], ["--json"]):
            async with spawn(
                "join", server.url, "--token", token, "--name", "taken", *extra
            ) as proc:
                assert await proc.wait() == 1
            assert proc.stdout == []
            line = one_clear_line("\n".join(proc.stderr))
            assert "cannot join" in line and "104 EXISTING_USER_IN_SESSION_ERROR_CODE" in line


async def test_ctrl_c_while_joining_exits_0_without_a_traceback() -> None:
    # a server that accepts the connection and never answers: the join hangs
    accepted = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        accepted.set()

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        args = ["join", f"ws://127.0.0.1:{port}", "--token", mint(SECRET, "room"), "--name", "w"]
        async with spawn(*args) as proc:
            async with asyncio.timeout(10):
                await accepted.wait()
            proc.process.send_signal(signal.SIGINT)
            assert await proc.wait() == 0
        assert proc.stdout == [] and proc.stderr == []
    finally:
        for writer in writers:
            writer.close()
        listener.close()
        await listener.wait_closed()


async def test_a_server_shutdown_ends_join_with_0_as_a_moderators_close_does() -> None:
    server = SignalingServer(secret=SECRET)
    await server.start()
    try:
        args = ["join", server.url, "--token", mint(SECRET, "room"), "--name", "w", "--json"]
        async with spawn(*args) as proc:
            await proc.line(_is("connected"))
            await server.close(graceful=True)  # roomsignal serve's Ctrl-C
            assert await proc.wait() == 0
    finally:
        await server.close()
    closed = [_event(line) for line in proc.stdout if _event(line)["event"] == "session_closed"]
    assert [event["reason"] for event in closed] == ["serverShutdown"]
    assert proc.stderr == []


async def test_join_rounds_the_floats_it_prints(server: SignalingServer) -> None:
    token = mint(SECRET, "room")
    async with spawn("join", server.url, "--token", token, "--name", "w") as proc:
        await proc.line(lambda line: "connected" in line)
        host_token = mint(SECRET, "room", roles=["synchronizer"])
        async with Session(server.url, token=host_token, name="host", reconnect=None) as host:
            await host.send_sync_data(1 / 3, True)
            line = await proc.line(lambda line: line.split()[1:2] == ["sync_data"])
        proc.process.send_signal(signal.SIGINT)
        assert await proc.wait() == 0
    assert "position=0.333 " in line
    server_time = line.split("serverTime=")[1].split()[0]
    assert len(server_time.partition(".")[2]) <= 3
