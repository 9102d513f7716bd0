"""``roomsignal join`` as a real process: every event printed as it arrives, clean leave."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

from roomsignal import Session
from roomsignal.server import SignalingServer
from roomsignal.tokens import mint

from .conftest import SECRET, spawn


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
            await proc.line(lambda line: " participant_joined " in line and "'peer'" in line)
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
            token = mint(SECRET, "room")
            args = ["join", server.url, "--token", token, "--name", "talker", "--json"]
            async with spawn(*args, "--reconnect-attempts", "2", stdin=True) as proc:
                await proc.line(_is("connected"))
                stdin = proc.process.stdin
                assert stdin is not None
                stdin.write(b"hello everyone\n/to alice just for you\n/to nobody hm\n")
                await stdin.drain()
                async with asyncio.timeout(10):
                    first, second = await got.get(), await got.get()
                    to_bob = await bob_got.get()
                assert (first.text, first.private) == ("hello everyone", False)
                assert (second.text, second.private) == ("just for you", True)
                assert (to_bob.text, to_bob.private) == ("hello everyone", False)
                await proc.line(lambda line: "no participant named 'nobody'" in line, stderr=True)
                stdin.close()  # the end of stdin ends the talking, not the session
                await a.send_message("still there?")
                line = await proc.line(lambda line: "still there?" in line)
                assert _event(line)["event"] == "message"
                proc.process.send_signal(signal.SIGINT)
                assert await proc.wait() == 0
        async with asyncio.timeout(10):  # bob's next message is not the private line
            assert (await bob_got.get()).text == "still there?"


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
