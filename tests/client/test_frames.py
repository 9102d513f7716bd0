"""FrameSplitter: the client's own cut of the byte stream agrees with RFC 6455 framing."""

from __future__ import annotations

import json
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from roomsignal.client._connection import Binary, FrameSplitter, Raw, _wire

from .conftest import Recorder, SessionFactory

HANDSHAKE = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: x\r\n\r\n"
)

simple = st.builds(
    lambda opcode, data: [Frame(opcode, data)],
    st.sampled_from([Opcode.TEXT, Opcode.BINARY]),
    st.binary(max_size=300) | st.binary(min_size=126, max_size=70_000),
)
control = st.builds(
    lambda opcode, data: [Frame(opcode, data)],
    st.sampled_from([Opcode.PING, Opcode.PONG]),
    st.binary(max_size=125),
)
fragmented = st.builds(
    lambda first, parts: [
        Frame(Opcode.TEXT, first, fin=False),
        *(Frame(Opcode.CONT, p, fin=False) for p in parts),
        Frame(Opcode.CONT, b"end"),
    ],
    st.binary(max_size=50),
    st.lists(st.binary(max_size=50), max_size=3),
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in pairwise(points)]


def _feed_in_turns(splitter: FrameSplitter, chunk: bytes, limit: int | None) -> list[bytes]:
    """What ``chunk`` yields, taken ``limit`` items at a time as the connection does."""
    if limit is None:
        return splitter.feed(chunk)
    out = splitter.feed(chunk, limit)
    taken = out
    while len(taken) == limit:
        taken = splitter.feed(b"", limit)
        assert len(taken) <= limit
        out += taken
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(simple | control | fragmented, max_size=12),
    st.lists(st.integers(0, 10**6)),
    st.none() | st.integers(1, 4),
)
def test_splitter_cuts_at_every_frame_boundary(
    groups: list[list[Frame]], cuts: list[int], limit: int | None
) -> None:
    frames = [frame for group in groups for frame in group]
    wire = [frame.serialize(mask=False) for frame in frames]
    stream = HANDSHAKE + b"".join(wire)
    splitter = FrameSplitter(1 << 20)
    out = [
        item for chunk in _chunks(stream, cuts) for item in _feed_in_turns(splitter, chunk, limit)
    ]
    assert not splitter.passthrough
    assert [_wire(item) for item in out] == [HANDSHAKE, *wire]  # whole frames, in order
    assert type(out[0]) is Raw
    for item, frame in zip(out[1:], frames, strict=True):
        direct = frame.fin and frame.opcode in (Opcode.TEXT, Opcode.BINARY)
        assert (type(item) is not Raw) == direct
        if not direct:
            continue
        # Text comes out as its bytes, UTF-8 or not (the codec judges); binary as Binary.
        kind = Binary if frame.opcode is Opcode.BINARY else bytes
        assert type(item) is kind and item == frame.data


def test_odd_frames_hand_everything_to_websockets() -> None:
    text = Frame(Opcode.TEXT, b"ok").serialize(mask=False)
    masked = Frame(Opcode.TEXT, b"x").serialize(mask=True)
    rsv = bytes([0xC1, 0x01]) + b"x"  # RSV1 set, no extension negotiated
    close = Frame(Opcode.CLOSE, b"\x03\xe8").serialize(mask=False)
    for odd in (masked, rsv, close):
        splitter = FrameSplitter(1 << 20)
        splitter.handshake_done = True
        out = splitter.feed(text + odd + text)
        assert splitter.passthrough
        assert out[0] == b"ok"
        assert b"".join(out[1:]) == odd + text  # type: ignore[arg-type]
        assert all(type(item) is Raw for item in out[1:])
        assert splitter.feed(text) == [Raw(text)]


def test_a_limited_feed_keeps_the_rest_for_later() -> None:
    splitter = FrameSplitter(1 << 20)
    splitter.handshake_done = True
    texts = [Frame(Opcode.TEXT, b"%d" % n).serialize(mask=False) for n in range(5)]
    stream = b"".join(texts)
    assert splitter.feed(stream[:-1], 2) == [b"0", b"1"]
    assert splitter.feed(b"", 2) == [b"2", b"3"]
    assert splitter.feed(b"", 2) == []  # the last frame is not whole yet
    assert splitter.feed(stream[-1:], 0) == []  # data while earlier frames wait: kept
    assert splitter.feed(b"", 2) == [b"4"]


def test_oversized_frame_goes_to_websockets() -> None:
    splitter = FrameSplitter(100)
    splitter.handshake_done = True
    big = Frame(Opcode.TEXT, b"x" * 101).serialize(mask=False)
    assert splitter.feed(big[:10]) == [Raw(big[:10])]  # the header already says too big
    assert splitter.passthrough


def test_a_refused_handshake_is_websockets_business() -> None:
    splitter = FrameSplitter(None)
    refusal = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"
    assert splitter.feed(refusal) == [Raw(refusal)]
    assert splitter.passthrough
    splitter = FrameSplitter(None)
    assert splitter.feed(b"HTTP/1.1 1") == []  # could still be a 101: wait
    assert splitter.feed(b"01 Switching Protocols\r\n\r\n") == [
        Raw(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    ]


async def test_frames_split_anywhere_reach_the_session_in_order(
    make_session: SessionFactory,
) -> None:
    """A server writing its frames in 7-byte pieces, with pings in between."""
    join_result = {
        "sessionId": "room",
        "participantId": "p1",
        "participantSecret": "s",
        "participantType": "full",
        "roles": [],
        "participants": [],
        "seq": 0,
        "resumed": False,
    }

    def error(seq: int) -> bytes:
        note = {
            "jsonrpc": "2.0",
            "method": "sessionError",
            "params": {"seq": seq, "code": 201, "message": f"e{seq}", "data": {}},
        }
        return Frame(Opcode.TEXT, json.dumps(note).encode()).serialize(mask=False)

    async def handler(ws: ServerConnection) -> None:
        join = json.loads(await ws.recv())
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": join["id"], "result": join_result}))
        stream = b"".join(
            error(seq) + Frame(Opcode.PING, b"k%d" % seq).serialize(mask=False)
            for seq in range(1, 40)
        )
        for start in range(0, len(stream), 7):
            ws.transport.write(stream[start : start + 7])
        async for raw in ws:
            reply = {"jsonrpc": "2.0", "id": json.loads(raw)["id"], "result": {}}
            await ws.send(json.dumps(reply))

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        session = make_session(url=f"ws://127.0.0.1:{port}", reconnect=None)
        errors = Recorder()
        session.on_session_error(errors)
        await session.connect()
        got = await errors.wait_for(39)
        assert [e.message for e in got] == [f"e{seq}" for seq in range(1, 40)]
        await session.close()


async def test_an_open_connection_lets_go_of_its_handshake_headers(
    make_session: SessionFactory,
) -> None:
    """websockets keeps them for the connection's life; the session empties them (4 KiB)."""
    session = make_session("shed")
    reconnected = Recorder()
    session.on_reconnected(reconnected)
    async with session:
        ws = session._ws
        assert ws is not None and ws.response is not None and ws.request is not None
        assert ws.response.status_code == 101
        assert not ws.response.headers and not ws.request.headers
        assert ws.subprotocol is not None  # what the handshake settled is kept
        assert isinstance(await session.ping(), float)  # and the connection works on
        # dropped with no answer: sent again after the resume, answered once
        await session.simulate_scenario("connectionDrop")
        (event,) = await reconnected.wait_for(1)
        assert event.resumed and event.resent == 1
        again = session._ws
        assert again is not None and again is not ws
        assert again.response is not None and not again.response.headers  # each connection
        assert isinstance(await session.ping(), float)
