"""The transport: bad frames, binary and oversize frames, /healthz, subprotocols, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from roomsignal.server import SignalingServer
from roomsignal.server._rooms import SimulatedFailure

from .conftest import WAIT, Peer, ServerFactory, token, until

OpenPeer = Callable[[], Awaitable[Peer]]
MakePeer = Callable[[SignalingServer], Awaitable[Peer]]


async def test_not_json_is_parse_error_and_the_connection_stays_usable(peer: OpenPeer) -> None:
    alice = await peer()
    await alice.send_raw("{not json")
    error = (await alice.null_id_error())["error"]
    assert error["code"] == -32700
    assert error["data"]["name"] == "PARSE_ERROR"
    await alice.join("room", "alice")


async def test_batch_gets_a_single_invalid_request_with_null_id(peer: OpenPeer) -> None:
    alice = await peer()
    await alice.send_raw(json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "ping"}] * 3))
    answer = await alice.null_id_error()
    assert answer["id"] is None
    assert answer["error"]["code"] == -32600
    assert answer["error"]["data"]["name"] == "INVALID_REQUEST"
    await alice.quiet()
    assert not alice.others and not alice.responses


@pytest.mark.parametrize(
    "frame",
    [
        '"just a string"',
        "42",
        '{"jsonrpc": "2.0", "method": "ping"}',  # no id: not a request
        '{"jsonrpc": "2.0", "method": "nope"}',
        '{"jsonrpc": "2.0", "id": true, "method": "nope"}',
        '{"jsonrpc": "2.0", "id": 1, "method": 5}',
        '{"jsonrpc": "2.0", "id": 1, "result": {}}',
        '{"jsonrpc": "2.0", "method": "participantLeft", "params": {"participantId": "p", "reason": "left", "seq": 1}}',
    ],
)
async def test_frames_that_are_not_request_objects_are_invalid_request(
    peer: OpenPeer, frame: str
) -> None:
    alice = await peer()
    await alice.send_raw(frame)
    answer = await alice.null_id_error()
    assert answer["error"]["code"] == -32600, answer
    await alice.call("ping")


async def test_unknown_method_before_and_after_join(peer: OpenPeer) -> None:
    alice = await peer()
    answer = await alice.request("fly", {})
    assert answer["error"]["code"] == -32601
    assert answer["error"]["data"] == {"name": "METHOD_NOT_FOUND", "method": "fly"}
    await alice.join("room", "alice")
    assert (await alice.request("fly"))["error"]["code"] == -32601


async def test_simulate_scenario_is_unknown_without_simulation(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(allow_simulation=False)
    alice = await make_peer(server)
    error = await alice.fail("simulateScenario", scenario="internalError")
    assert error["code"] == -32601
    assert error["data"]["name"] == "METHOD_NOT_FOUND"
    await alice.join("room", "alice")
    error = await alice.fail("simulateScenario", scenario="sessionErrors", code=201)
    assert error["code"] == -32601
    await alice.quiet()


_SIMULATE_BAD_PARAMS = [
    '{"jsonrpc":"2.0","id":"s1","method":"simulateScenario","params":{}}',
    '{"jsonrpc":"2.0","id":"s2","method":"simulateScenario"}',
    '{"jsonrpc":"2.0","id":"s3","method":"simulateScenario","params":{"scenario":5}}',
    '{"jsonrpc":"2.0","id":"s4","method":"simulateScenario","params":[1]}',
    '{"jsonrpc":"2.0","id":"s5","method":"simulateScenario","params":{"scenario":"x","count":-1}}',
]


async def test_simulate_scenario_without_simulation_is_unknown_whatever_its_params(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(allow_simulation=False)
    alice = await make_peer(server)
    for joined in (False, True):
        for frame in _SIMULATE_BAD_PARAMS:
            await alice.send_raw(frame)
            request_id = json.loads(frame)["id"]
            error = (await alice.response(request_id))["error"]
            assert error["code"] == -32601, (joined, frame, error)
            assert error["data"] == {"name": "METHOD_NOT_FOUND", "method": "simulateScenario"}
        if not joined:
            await alice.join("room", "alice")
    # Not a request object at all still comes first: -32600.
    await alice.send_raw('{"jsonrpc":"1.0","id":"s6","method":"simulateScenario"}')
    assert (await alice.response("s6"))["error"]["code"] == -32600
    await alice.quiet()


async def test_simulate_scenario_with_bad_params_is_invalid_params_when_allowed(
    peer: OpenPeer,
) -> None:
    alice = await peer()
    for joined in (False, True):
        for frame in _SIMULATE_BAD_PARAMS:
            await alice.send_raw(frame)
            error = (await alice.response(json.loads(frame)["id"]))["error"]
            assert error["code"] == -32602, (joined, frame, error)
            assert error["data"]["name"] == "INVALID_PARAMS"
            assert error["data"]["errors"]
        if not joined:
            await alice.join("room", "alice")


@pytest.mark.parametrize(
    ("frame", "request_id"),
    [
        ('{"jsonrpc":"1.0","id":7,"method":"ping"}', 7),
        ('{"jsonrpc":"1.0","id":"seven","method":"fly"}', "seven"),
        ('{"jsonrpc":2,"id":8,"method":"join","params":{}}', 8),
    ],
)
async def test_invalid_request_with_a_readable_id_is_answered_with_that_id(
    peer: OpenPeer, frame: str, request_id: int | str
) -> None:
    alice = await peer()
    await alice.send_raw(frame)
    answer = await alice.response(request_id)
    assert answer["error"]["code"] == -32600, answer
    assert answer["error"]["data"]["name"] == "INVALID_REQUEST"
    await alice.quiet()
    assert not alice.others


@pytest.mark.parametrize(
    "frame",
    [
        '{"jsonrpc":"2.0","id":9}',  # no method: no request id can be read
        '{"jsonrpc":"2.0","id":9,"method":5}',
        '{"jsonrpc":"2.0","id":9,"result":{}}',
        '[{"jsonrpc":"2.0","id":9,"method":"ping"}]',
    ],
)
async def test_invalid_request_without_a_readable_request_id_is_answered_with_null(
    peer: OpenPeer, frame: str
) -> None:
    alice = await peer()
    await alice.send_raw(frame)
    answer = await alice.null_id_error()
    assert answer["id"] is None
    assert answer["error"]["code"] == -32600, answer
    await alice.quiet()
    assert not alice.responses


async def test_wrong_param_types_are_invalid_params_with_errors(peer: OpenPeer) -> None:
    alice = await peer()
    error = await alice.fail("join", token=123, name="alice")
    assert error["code"] == -32602
    assert error["data"]["name"] == "INVALID_PARAMS"
    assert error["data"]["method"] == "join"
    assert error["data"]["errors"][0]["loc"] == ["params", "token"]
    assert error["data"]["errors"][0]["msg"]
    # Before join, a wrong shape is still -32602 (checked before 102).
    error = await alice.fail("publish", audio="yes")
    assert error["code"] == -32602
    await alice.join("room", "alice")
    error = await alice.fail("publish", audio="yes")
    assert error["code"] == -32602
    assert (await alice.call("publish", audio=True))["streamId"]


async def test_a_value_the_room_judges_is_not_invalid_params(peer: OpenPeer) -> None:
    alice = await peer()
    assert (await alice.fail("join", token="x.y.z", name="a"))["code"] == 1101
    assert (await alice.fail("join", token=token(), name="a", participantType="x"))["code"] == 101


async def test_refused_requests_are_logged_at_info(
    peer: OpenPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="roomsignal.server")
    alice = await peer()
    await alice.join("room", "alice")
    caplog.clear()
    await alice.fail("unpublish")
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert [(r.name, r.levelno) for r in refused] == [("roomsignal.server", logging.INFO)]
    assert "unpublish refused with 105" in refused[0].getMessage()
    caplog.clear()
    await alice.fail("fly")  # answered before the room: not logged
    assert not caplog.records


async def test_binary_frame_closes_with_1003(server: SignalingServer, peer: OpenPeer) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    await alice.ws.send(b'{"jsonrpc":"2.0","id":1,"method":"ping"}')
    assert await alice.closed() == 1003
    # A protocol violation is a lost connection, not a leave: the seat waits.
    await until(lambda: server.rooms.is_connected(alice.participant_id or "") is False, bob)
    await bob.quiet()


async def test_text_that_is_not_utf8_closes_with_1007(
    server: SignalingServer, peer: OpenPeer
) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    await alice.ws.send(
        b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\xff"}}', text=True
    )
    assert await alice.closed() == 1007
    await until(lambda: server.rooms.is_connected(alice.participant_id or "") is False, bob)
    await bob.quiet()  # a lost connection, as for 1003: the seat waits, nobody is told


async def test_frame_over_max_frame_bytes_closes_with_1009(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(max_frame_bytes=1024)
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    await alice.note("participantJoined")
    await alice.call("sendMessage", text="x" * 900)
    await alice.send_raw(
        json.dumps({"jsonrpc": "2.0", "id": 9, "method": "ping", "pad": "x" * 2000})
    )
    assert await alice.closed() == 1009
    assert 9 not in alice.responses
    # A lost connection, not a leave: the seat waits, and a resume takes it back.
    await until(lambda: server.rooms.is_connected(alice.participant_id or "") is False, bob)
    assert (await bob.note("messageReceived"))["text"] == "x" * 900
    await bob.call("sendMessage", text="while away")
    again = await make_peer(server)
    resumed = await again.call(
        "join", token=token(), name="alice", oldParticipantSecret=alice.secret, lastSeq=1
    )
    assert resumed["resumed"] is True
    assert resumed["participantId"] == alice.participant_id
    assert resumed["seq"] == 2
    assert (await again.note("messageReceived"))["text"] == "while away"
    assert server.rooms.is_connected(alice.participant_id or "") is True
    await bob.quiet()  # bob saw no leave and no join


async def test_healthz_answers_200_ok(server: SignalingServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        async with asyncio.timeout(WAIT):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            assert await reader.readexactly(length) == b"ok\n"
    finally:
        writer.close()
        await writer.wait_closed()


async def test_foreign_subprotocol_only_is_refused(server: SignalingServer) -> None:
    with pytest.raises(InvalidStatus) as caught:
        await connect(server.url, subprotocols=["chat.v9"])  # type: ignore[list-item]
    assert caught.value.response.status_code == 400


async def test_graceful_close_sends_203_then_session_closed_then_1000(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server()
    alice, idle = await make_peer(server), await make_peer(server)
    await alice.join("room", "alice")
    await idle.call("ping")
    await server.close()
    error = await alice.note("sessionError")
    assert error["code"] == 203
    assert error["data"]["name"] == "SESSION_CLOSED_ERROR_CODE"
    closed = await alice.note("sessionClosed")
    assert closed == {"sessionId": "room", "reason": "serverShutdown", "seq": 2}
    assert await alice.closed() == 1000
    assert await idle.closed() == 1000
    assert server.connection_count == 0
    await server.close()  # idempotent


async def test_nothing_is_left_running_after_close(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    before = asyncio.all_tasks()
    server = await make_server(resume_window=60.0)
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    await alice.call("publish", audio=True)
    await bob.call("subscribe", target=alice.participant_id)  # an sdp deadline pending
    await bob.drop()  # a resume deadline pending
    await server.close()
    await alice.closed()
    left = asyncio.all_tasks() - before - {asyncio.current_task()}
    if left:
        _, pending = await asyncio.wait(left, timeout=WAIT)
        assert not pending, pending
    assert server.connection_count == 0


async def test_abortive_close_drops_every_connection_without_a_close_frame(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server()
    alice = await make_peer(server)
    await alice.join("room", "alice")
    await server.close(graceful=False)
    assert await alice.closed() is None
    assert not alice.notes
    # The same object serves again, on the same port, with empty rooms.
    port = server.port
    await server.start()
    assert server.port == port
    again = await make_peer(server)
    assert alice.secret is not None
    error = await again.fail(
        "join", token=token(), name="alice", oldParticipantSecret=alice.secret, lastSeq=0
    )
    assert error["code"] == 106


async def test_abortive_close_cuts_short_a_graceful_close_stuck_on_a_silent_peer(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(close_timeout=60.0)
    silent = await make_peer(server)
    await silent.join("room", "silent")
    silent.ws.transport.pause_reading()  # never answers the closing handshake
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):  # stuck for up to close_timeout (60 s)
            await server.close()
    assert not server.is_serving
    assert server.rooms.stats()["sessions"] == 0
    assert server.connection_count == 1
    async with asyncio.timeout(WAIT):
        await server.close(graceful=False)
    assert server.connection_count == 0
    await server.close()  # idempotent once closed


async def test_serve_forever_runs_until_cancelled(make_peer: MakePeer) -> None:
    server = SignalingServer(secret="serve-forever-secret-0123456789abcdef")
    await server.start()
    task = asyncio.create_task(server.serve_forever())
    try:
        alice = await make_peer(server)
        await alice.call("ping")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not server.is_serving
    assert await alice.closed() == 1000


# --- fuzzing ----------------------------------------------------------------------------

_methods = st.sampled_from(
    [
        "join",
        "leave",
        "publish",
        "unpublish",
        "subscribe",
        "unsubscribe",
        "sdpOffer",
        "sdpAnswer",
        "iceCandidate",
        "sendMessage",
        "sendSyncData",
        "getSessionState",
        "closeSession",
        "ping",
        "simulateScenario",
        "nope",
    ]
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_request_like = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0"), "id": st.integers() | st.text(max_size=5), "method": _methods},
    optional={
        "params": st.dictionaries(
            st.sampled_from(
                [
                    "token",
                    "name",
                    "audio",
                    "video",
                    "target",
                    "exchangeId",
                    "sdp",
                    "candidate",
                    "text",
                    "to",
                    "position",
                    "playing",
                    "scenario",
                    "code",
                    "count",
                    "participantType",
                    "oldParticipantSecret",
                    "lastSeq",
                ]
            ),
            _json,
            max_size=5,
        )
    },
)
_names = itertools.count()


@pytest.fixture
async def fuzz_server(make_server: ServerFactory) -> SignalingServer:
    return await make_server(resume_window=0.0)


_frames = st.one_of(
    st.text(max_size=200),
    _json.map(json.dumps),
    _request_like.map(json.dumps),
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(frames=st.lists(_frames, min_size=1, max_size=8))
async def test_random_frames_never_break_the_server(
    fuzz_server: SignalingServer,
    make_peer: MakePeer,
    caplog: pytest.LogCaptureFixture,
    frames: list[str],
) -> None:
    caplog.set_level(logging.ERROR, logger="roomsignal.server")
    server = fuzz_server
    n = next(_names)
    fuzzer, witness = await make_peer(server), await make_peer(server)
    await fuzzer.join(f"fuzz-{n}", "fuzzer")
    for frame in frames:
        if frame.count("connectionDrop"):
            continue  # dropping itself is allowed; keep the fuzzer talking
        try:
            await fuzzer.send_raw(frame)
        except Exception:
            break
    await fuzzer.ws.close()
    result = await witness.call("ping")
    assert result["serverTime"] > 0
    await witness.join(f"other-{n}", "witness")
    await witness.call("sendMessage", text="still here")
    await witness.call("leave")
    await witness.closed()
    # Nothing leaks: with no resume window every seat and session goes away.
    probe = await make_peer(server)
    await until(lambda: server.rooms.stats()["sessions"] == 0, probe)
    assert server.rooms.stats()["participants"] == 0
    await probe.ws.close()
    crashes = [
        r for r in caplog.records if r.exc_info and not isinstance(r.exc_info[1], SimulatedFailure)
    ]
    assert not crashes, crashes


async def test_non_finite_numbers_are_invalid_params_and_never_relayed(peer: OpenPeer) -> None:
    alice, bob = await peer(), await peer()
    await alice.join("room", "alice", roles=["synchronizer"])
    await bob.join("room", "bob")
    for literal in ("NaN", "1e999", "-Infinity"):
        await alice.send_raw(
            '{"jsonrpc":"2.0","id":5,"method":"sendSyncData",'
            f'"params":{{"position":{literal},"playing":true}}}}'
        )
        error = (await alice.response(5))["error"]
        assert error["code"] == -32602
        assert error["data"]["errors"][0]["loc"] == ["params", "position"]
    await bob.quiet()
