"""Hostile load (issue 15), server side: every attack of the issue's table, fast.

Each test drives the real server over loopback with raw websockets peers
and bounds what the attack can make the server hold: queue and replay bytes,
seats, connections. Timing figures (RSS, p99 under a flood, join cost at
2,000 and 10,000 members) are in benchmarks/hostile.py, not here.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from roomsignal import Session
from roomsignal.protocol import JoinParams, JoinRequest, PublishParams, PublishRequest
from roomsignal.server import Rooms, ServerConfig, SignalingServer
from roomsignal.server._frames import parse_request
from roomsignal.server._limits import json_size
from roomsignal.server._rooms import Send
from roomsignal.tokens import mint

from .conftest import SECRET, WAIT, Peer, ServerFactory, token, until

MakePeer = Callable[..., Awaitable[Peer]]


def _bad_params(error: dict[str, Any], field: str, limit: int) -> None:
    assert error["code"] == -32602, error
    assert error["data"]["name"] == "INVALID_PARAMS"
    (entry,) = error["data"]["errors"]
    assert entry["loc"] == ["params", field]
    assert entry["limit"] == limit
    assert str(limit) in entry["msg"]


# --- size limits: what one member may make others store ------------------------------


async def test_each_size_limit_is_32602_naming_the_field_and_the_limit(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(
        max_name_bytes=8,
        max_metadata_bytes=20,
        max_text_bytes=10,
        max_sdp_bytes=30,
        max_candidate_bytes=12,
    )
    alice, bob = await make_peer(server), await make_peer(server)
    base = {"token": token("room"), "participantType": "full"}
    # -32602 comes before the room's rules: before join it is not 102.
    _bad_params(await alice.fail("sendMessage", text="x" * 11), "text", 10)
    _bad_params(await alice.fail("join", **base, name="n" * 9), "name", 8)
    _bad_params(await alice.fail("join", **base, name="é" * 5), "name", 8)  # 10 UTF-8 bytes
    meta = {"k": "v" * 20}
    _bad_params(await alice.fail("join", **base, name="alice", metadata=meta), "metadata", 20)
    # At the limit is fine, and nothing was lost by the refusals: the connection still joins.
    await alice.call("join", **base, name="n" * 8, metadata={"k": "v" * 12})  # 20 bytes
    await bob.join("room", "bob")
    await alice.note("participantJoined")
    _bad_params(await alice.fail("sendMessage", text="x" * 11), "text", 10)
    await alice.call("sendMessage", text="x" * 10)
    assert (await bob.note("messageReceived"))["text"] == "x" * 10
    await bob.call("publish", audio=True, video=False)
    await alice.note("streamPublished")
    exchange = (await alice.call("subscribe", target=bob.participant_id))["exchangeId"]
    await bob.note("subscribeRequest")
    _bad_params(await bob.fail("sdpOffer", exchangeId=exchange, sdp="v" * 31), "sdp", 30)
    _bad_params(
        await bob.fail("iceCandidate", exchangeId=exchange, candidate="c" * 13), "candidate", 12
    )
    await bob.call("sdpOffer", exchangeId=exchange, sdp="v" * 30)
    assert (await alice.note("sdpOffer"))["sdp"] == "v" * 30
    _bad_params(await alice.fail("sdpAnswer", exchangeId=exchange, sdp="a" * 31), "sdp", 30)
    await alice.quiet()
    await bob.quiet()


async def test_ice_bytes_held_per_exchange_are_bounded_and_delivered_in_order(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    # The issue's attack: 50 exchanges x 65 candidates of 60 KB held before the offer.
    server = await make_server(max_candidate_bytes=400, max_held_ice_bytes=1000)
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    await alice.note("participantJoined")
    await bob.call("publish", audio=True, video=False)
    await alice.note("streamPublished")
    exchange = (await alice.call("subscribe", target=bob.participant_id))["exchangeId"]
    await bob.note("subscribeRequest")
    await alice.call("iceCandidate", exchangeId=exchange, candidate="a" * 400)
    await bob.call("iceCandidate", exchangeId=exchange, candidate="b" * 400)
    error = await alice.fail("iceCandidate", exchangeId=exchange, candidate="c" * 201)
    _bad_params(error, "candidate", 1000)
    assert error["data"]["exchangeId"] == exchange
    await alice.call("iceCandidate", exchangeId=exchange, candidate="c" * 200)  # exactly 1000
    await bob.call("sdpOffer", exchangeId=exchange, sdp="offer")
    assert (await alice.note("sdpOffer"))["sdp"] == "offer"
    assert (await alice.note("iceCandidate"))["candidate"] == "b" * 400
    assert [(await bob.note("iceCandidate"))["candidate"] for _ in range(2)] == [
        "a" * 400,
        "c" * 200,
    ]
    # Once relayed nothing is held: any number of candidates passes straight through.
    for _ in range(5):
        await alice.call("iceCandidate", exchangeId=exchange, candidate="d" * 400)
    assert len([await bob.note("iceCandidate") for _ in range(5)]) == 5


async def test_session_metadata_budget_and_max_participants(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(
        max_metadata_bytes=100, max_session_metadata_bytes=150, max_participants=3
    )
    peers = [await make_peer(server) for _ in range(4)]
    meta = {"k": "v" * 60}  # 68 bytes as JSON
    await peers[0].call("join", token=token("room"), name="p0", metadata=meta)
    await peers[1].call("join", token=token("room"), name="p1", metadata=meta)
    error = await peers[2].fail("join", token=token("room"), name="p2", metadata=meta)
    _bad_params(error, "metadata", 150)
    await peers[2].call("join", token=token("room"), name="p2")  # no metadata: fits
    error = await peers[3].fail("join", token=token("room"), name="p3", participantType="viewer")
    assert error["code"] == 206
    assert error["data"]["name"] == "SESSION_IS_FULL_ERROR_CODE"
    # A seat that leaves gives its room (and its metadata bytes) back.
    await peers[0].call("leave")
    assert await peers[0].closed() == 1000
    await until(lambda: server.rooms.stats()["participants"] == 2, peers[2])
    await peers[3].call("join", token=token("room"), name="p3", metadata=meta)


_WORST_TOKEN = mint(SECRET, "room", roles=["synchronizer", "moderator"], ttl=10**6)


def _join(
    rooms: Rooms, conn: int, name: str, metadata: dict[str, Any], kind: str = "viewer"
) -> list[Any]:
    request = JoinRequest(
        id=conn,
        params=JoinParams(token=_WORST_TOKEN, name=name, metadata=metadata, participant_type=kind),
    )
    return rooms.handle(conn, request, 1000.0)


def _fill_to_the_limits(rooms: Rooms, count: int) -> None:
    """``count`` members, each with the longest name, spending the whole metadata budget."""
    config = rooms.config
    per_member = config.max_session_metadata_bytes // count
    spent = 0
    for n in range(count):
        name = f"{n:05d}".ljust(config.max_name_bytes, "n")
        size = min(
            config.max_metadata_bytes, per_member + 200, config.max_session_metadata_bytes - spent
        )
        metadata = {"m": "x" * (size - 8)} if size > 8 else None
        streaming = n < config.max_streaming_participants
        effects = _join(rooms, -(n + 1), name, metadata, "full" if streaming else "viewer")
        first = effects[0]
        assert isinstance(first, Send) and '"result"' in first.frame, first
        if streaming:
            publish = PublishRequest(id=0, params=PublishParams(audio=True, video=True))
            assert '"result"' in rooms.handle(-(n + 1), publish, 1000.0)[0].frame
        spent += json_size(metadata)


async def test_a_default_client_joins_a_room_full_at_every_limit_and_reads_its_state(
    make_server: ServerFactory,
) -> None:
    """The issue's 20 viewers x 60 KB, at the defaults: the worst full room fits 1 MiB.

    Seats without sockets (as in their resume window) fill the room: the
    longest names, both roles, every streaming seat publishing, the whole
    session metadata budget spent. A default client (max_size 1 MiB) then
    joins as the last member and reads the state.
    """
    server = await make_server()
    config = server.config
    defaults = ServerConfig()
    for name in ServerConfig.__slots__:
        if name not in ("sdp_timeout", "allow_simulation", "close_timeout"):
            assert getattr(config, name) == getattr(defaults, name), name
    _fill_to_the_limits(server.rooms, config.max_participants - 1)
    state = server.rooms.session_state("room")
    assert state is not None
    worst = (
        len(state.model_dump_json().encode())
        * config.max_participants
        // (config.max_participants - 1)
    )
    assert worst < 2**20 - 4096, worst  # room for the envelope and one more entry
    name = "z" * config.max_name_bytes
    late_session = Session(
        server.url, token=mint(SECRET, "room"), name=name, participant_type="viewer", reconnect=None
    )
    async with late_session as late:
        assert len(late.participants) == config.max_participants - 1
        full = await late.get_state()
        assert len(full.participants) == config.max_participants
        refused = _join(server.rooms, -(10**6), "one-too-many", None)
        assert '"code":206' in refused[0].frame


# --- the outbound queue, bounded in bytes: slow consumers ----------------------------


async def _not_reading(server: SignalingServer) -> Any:
    """A raw connection whose socket barely reads: a tiny receive buffer, a 1-frame queue."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    return await connect(
        server.url,
        sock=sock,
        subprotocols=["roomsignal.v1"],  # type: ignore[list-item]
        compression=None,
        max_size=None,
        max_queue=1,
        close_timeout=1.0,
    )


def _congest(server: SignalingServer, talker_conns: int = 1) -> None:
    """Shrink the kernel send buffers of the server's sockets but the first ``talker_conns``.

    A path that is congested (or a peer that does not read) fills them; on
    loopback they would otherwise absorb megabytes before the server's own
    queue grows, which only makes the test slower.
    """
    for _conn, link in sorted(server._links.items())[talker_conns:]:
        sock = link.ws.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def test_a_slow_consumer_is_closed_with_4002_keeps_its_seat_and_resumes_with_nothing_lost(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    limit = 64 * 1024
    server = await make_server(
        max_send_queue_bytes=limit, replay_buffer_bytes=64 * 2**20, close_timeout=30.0
    )
    talker = await make_peer(server)
    await talker.join("room", "talker")
    ws = await _not_reading(server)
    slow = Peer(ws)
    joined = await slow.join("room", "slow")
    assert joined["seq"] == 0
    await talker.note("participantJoined")
    _congest(server)
    sent = 0
    text = "x" * 16000
    async with asyncio.timeout(WAIT * 4):
        while server.rooms.is_connected(slow.participant_id or "") is not False:
            await talker.call("sendMessage", text=f"{sent:06d}{text}")
            sent += 1
            # The connection's unsent output never grows past the limit plus one write.
            for link in server._links.values():
                assert link.ws.transport.get_write_buffer_size() <= limit + 20_000
    # Evicted: the seat waits, others see no participantLeft, nothing more is written there.
    assert server.rooms.stats()["participants"] == 2
    for _ in range(5):  # these go to the replay buffer only
        await talker.call("sendMessage", text=f"{sent:06d}{text}")
        sent += 1
    await talker.quiet()
    seen: list[int] = []
    texts: list[str] = []
    async with asyncio.timeout(WAIT * 4):
        try:
            while True:
                frame = json.loads(await ws.recv())
                if frame.get("method") == "messageReceived":
                    seen.append(frame["params"]["seq"])
                    texts.append(frame["params"]["text"][:6])
        except ConnectionClosed:
            pass
    assert ws.protocol.close_rcvd is not None
    assert ws.protocol.close_rcvd.code == 4002
    assert ws.protocol.close_rcvd.reason == "slow"
    assert seen == list(range(1, len(seen) + 1))
    assert len(seen) < sent  # the gap the replay must fill
    again = await make_peer(server)
    assert slow.secret is not None
    answer = await again.call(
        "join",
        token=token("room"),
        name="slow",
        oldParticipantSecret=slow.secret,
        lastSeq=seen[-1] if seen else 0,
    )
    assert answer["resumed"] is True
    assert answer["seq"] == sent
    for _ in range(sent - len(seen)):
        params = await again.note("messageReceived")
        seen.append(params["seq"])
        texts.append(params["text"][:6])
    await again.quiet()
    assert seen == list(range(1, sent + 1))  # 0 lost, 0 duplicated
    assert texts == [f"{n:06d}" for n in range(sent)]
    assert server.rooms.stats()["participants"] == 2


async def test_300_members_that_never_read_hold_bounded_memory(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    """The issue's 300 non-readers with 60 KB metadata, scaled: each is cut at its limit."""
    limit = 32 * 1024
    server = await make_server(
        max_send_queue_bytes=limit, resume_window=0.0, max_metadata_bytes=4096
    )
    talker = await make_peer(server)
    await talker.join("room", "talker")
    sockets = []
    for n in range(20):
        ws = await _not_reading(server)
        sockets.append(ws)
        await ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "join",
                    "params": {
                        "token": token("room"),
                        "name": f"quiet{n}",
                        "participantType": "viewer",
                        "metadata": {"m": "x" * 4000},
                    },
                }
            )
        )
    await until(lambda: server.connection_count == 21, talker)
    _congest(server)
    text = "y" * 16000
    async with asyncio.timeout(WAIT * 4):
        while server.connection_count > 1:
            await talker.call("sendMessage", text=text)
            for link in server._links.values():
                assert link.ws.transport.get_write_buffer_size() <= limit + 100_000
    # resume_window 0: every evicted seat is gone, none leaked.
    await until(lambda: server.rooms.stats()["participants"] == 1, talker)
    for ws in sockets:  # they never read: no closing handshake to wait for
        ws.transport.abort()
        await ws.wait_closed()


async def test_replay_buffers_are_bounded_in_bytes_past_them_is_a_replay_gap(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    bound = 20_000
    server = await make_server(replay_buffer_bytes=bound, replay_buffer=1024)
    alice, bob = await make_peer(server), await make_peer(server)
    await alice.join("room", "alice")
    await bob.join("room", "bob")
    await alice.note("participantJoined")
    await bob.drop()
    for n in range(100):  # 100 x ~1.1 KB into a 20 KB buffer
        await alice.call("sendMessage", text=f"{n:04d}" + "z" * 1000)
    assert server.rooms.replay_bytes() <= 2 * bound  # alice's and bob's buffers
    again = await make_peer(server)
    assert bob.secret is not None
    error = (
        await again.request(
            "join",
            {
                "token": token("room"),
                "name": "bob",
                "oldParticipantSecret": bob.secret,
                "lastSeq": 0,
            },
        )
    )["error"]
    assert error["code"] == 106
    assert error["data"]["reason"] == "replayGap"
    # Within the bound a resume replays exactly what was missed.
    carol = await make_peer(server)
    await carol.join("room", "carol")
    await alice.note("participantLeft")
    await alice.note("participantJoined")
    await carol.drop()
    for n in range(5):
        await alice.call("sendMessage", text=f"{n:04d}" + "z" * 1000)
    back = await make_peer(server)
    assert carol.secret is not None
    answer = await back.call(
        "join", token=token("room"), name="carol", oldParticipantSecret=carol.secret, lastSeq=0
    )
    assert answer["resumed"] is True
    assert [(await back.note("messageReceived"))["text"][:4] for _ in range(5)] == [
        f"{n:04d}" for n in range(5)
    ]


# --- leave / closeSession close at once ---------------------------------------------


@pytest.mark.parametrize("method", ["leave", "closeSession"])
async def test_leave_or_close_session_then_pipelined_pings_closes_at_once(
    make_server: ServerFactory, make_peer: MakePeer, method: str
) -> None:
    # close_timeout 30: the old behaviour waited that long for a close frame it never read.
    server = await make_server(close_timeout=30.0)
    peer = await make_peer(server)
    await peer.join("room", "alice", roles=["moderator"])
    frames = [json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}})]
    frames += [json.dumps({"jsonrpc": "2.0", "id": 100 + n, "method": "ping"}) for n in range(40)]
    for frame in frames:
        await peer.ws.send(frame)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await peer.closed() == 1000  # within WAIT (5 s), far below close_timeout
    assert 1 in peer.responses and "result" in peer.responses[1]
    assert not any(key >= 100 for key in peer.responses if isinstance(key, int))
    other = await make_peer(server)
    await until(lambda: server.connection_count == 1, other)  # only `other` is left
    assert loop.time() - started < 10
    assert server.rooms.stats()["participants"] == 0


# --- connections that never join, and the cap -----------------------------------------


async def test_a_connection_that_does_not_join_in_time_is_closed(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(join_timeout=0.3)
    member = await make_peer(server)
    await member.join("room", "alice")
    idle = await make_peer(server)
    await idle.call("ping")  # pings do not count as joining
    assert await idle.closed() == 1008
    assert idle.ws.protocol.close_rcvd is not None
    assert idle.ws.protocol.close_rcvd.reason == "joinTimeout"
    await member.call("ping")  # joined in time: still served
    assert server.connection_count == 1


async def test_over_max_connections_the_handshake_is_refused_with_503(
    make_server: ServerFactory, make_peer: MakePeer
) -> None:
    server = await make_server(max_connections=2)
    first, second = await make_peer(server), await make_peer(server)
    with pytest.raises(InvalidStatus) as info:
        await make_peer(server)
    assert info.value.response.status_code == 503
    await first.ws.close()
    async with asyncio.timeout(WAIT):
        while server.connection_count > 1:
            await second.call("ping")
    third = await make_peer(server)
    await third.join("room", "carol")


# --- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", [{"nbf": "soon"}, {"nbf": True}, {"iat": "now"}, {"iat": False}])
async def test_nbf_or_iat_of_the_wrong_type_is_1101_on_join(
    server: SignalingServer, make_peer: MakePeer, claim: dict[str, Any]
) -> None:
    import time

    import jwt

    raw = jwt.encode({"sid": "room", "exp": time.time() + 60, **claim}, SECRET, algorithm="HS256")
    peer = await make_peer(server)
    error = await peer.fail("join", token=raw, name="alice")
    assert error["code"] == 1101
    assert server.rooms.stats()["participants"] == 0


def test_size_checks_run_before_the_room_is_touched() -> None:
    """A pure check: the refusal leaves no trace in the rooms."""
    rooms = Rooms(SECRET, ServerConfig(max_text_bytes=4))
    parsed = parse_request(
        json.dumps(
            {"jsonrpc": "2.0", "id": 7, "method": "sendMessage", "params": {"text": "hello"}}
        ),
        allow_simulation=False,
    )
    assert not hasattr(parsed, "frame")
    effects = rooms.handle(1, parsed, 0.0)  # type: ignore[arg-type]
    assert len(effects) == 1 and '"code":-32602' in effects[0].frame  # type: ignore[union-attr]
    assert rooms.stats()["participants"] == 0
