"""The sans-I/O codec: round trips of every message, and bad input of every kind."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from roomsignal.errors import ProtocolError
from roomsignal.protocol import (
    METHODS,
    NOTIFICATION_METHODS,
    CloseSessionParams,
    CloseSessionRequest,
    EmptyResult,
    ErrorObject,
    ErrorResponse,
    GetSessionStateRequest,
    IceCandidateNotification,
    IceCandidateNotificationParams,
    IceCandidateParams,
    IceCandidateRequest,
    JoinParams,
    JoinRequest,
    JoinResult,
    LeaveRequest,
    Message,
    MessageReceivedNotification,
    MessageReceivedParams,
    Participant,
    ParticipantJoinedNotification,
    ParticipantJoinedParams,
    ParticipantLeftNotification,
    ParticipantLeftParams,
    PingRequest,
    PingResult,
    PublishParams,
    PublishRequest,
    PublishResult,
    Response,
    SdpAnswerNotification,
    SdpAnswerRequest,
    SdpNotificationParams,
    SdpOfferNotification,
    SdpOfferRequest,
    SdpParams,
    SendMessageParams,
    SendMessageRequest,
    SendSyncDataParams,
    SendSyncDataRequest,
    SessionClosedNotification,
    SessionClosedParams,
    SessionErrorNotification,
    SessionErrorParams,
    SessionStateResult,
    SimulateScenarioParams,
    SimulateScenarioRequest,
    StreamPublishedNotification,
    StreamPublishedParams,
    Streams,
    StreamUnpublishedNotification,
    StreamUnpublishedParams,
    SubscribeRequest,
    SubscribeRequestNotification,
    SubscribeRequestParams,
    SubscribeResult,
    SubscriptionEndedNotification,
    SubscriptionEndedParams,
    SyncDataNotification,
    SyncDataParams,
    SyncState,
    TargetParams,
    UnpublishRequest,
    UnsubscribeRequest,
    _codec,
    decode,
    decode_response,
    decode_session_error,
    encode,
    error_response,
)
from roomsignal.protocol._codec import _ADAPTER

PARTICIPANT = Participant(
    participant_id="p1",
    name="alice",
    participant_type="full",
    roles=["moderator"],
    streams=Streams(audio=True, video=False),
    metadata={"k": [1, 2]},
)
SDP = SdpNotificationParams(seq=4, from_="p2", exchange_id="x1", sdp="v=0")

MESSAGES: list[Message] = [
    JoinRequest(id=1, params=JoinParams(token="t", name="bob")),
    JoinRequest(
        id="j",
        params=JoinParams(
            token="t",
            name="bob",
            participant_type="viewer",
            metadata={"a": 1},
            old_participant_secret="s",
            last_seq=9,
        ),
    ),
    LeaveRequest(id=2),
    PublishRequest(id=3, params=PublishParams(audio=True, video=True)),
    UnpublishRequest(id=4),
    SubscribeRequest(id=5, params=TargetParams(target="p1")),
    UnsubscribeRequest(id=6, params=TargetParams(target="p1")),
    SdpOfferRequest(id=7, params=SdpParams(exchange_id="x", sdp="v=0")),
    SdpAnswerRequest(id=8, params=SdpParams(exchange_id="x", sdp="v=0")),
    IceCandidateRequest(id=9, params=IceCandidateParams(exchange_id="x", candidate="c")),
    IceCandidateRequest(
        id=10,
        params=IceCandidateParams(exchange_id="x", candidate="c", sdp_mid="0", sdp_m_line_index=0),
    ),
    SendMessageRequest(id=11, params=SendMessageParams(text="hi")),
    SendMessageRequest(id=12, params=SendMessageParams(text="hi", to=["p1", "p2"])),
    SendSyncDataRequest(id=13, params=SendSyncDataParams(position=1.5, playing=True)),
    SendSyncDataRequest(
        id=14, params=SendSyncDataParams(position=0, playing=False, rate=2.0, media_id="m")
    ),
    GetSessionStateRequest(id=15),
    CloseSessionRequest(id=16),
    CloseSessionRequest(id=17, params=CloseSessionParams(reason="bye")),
    PingRequest(id=18),
    SimulateScenarioRequest(id=19, params=SimulateScenarioParams(scenario="internalError")),
    SimulateScenarioRequest(
        id=20, params=SimulateScenarioParams(scenario="sessionErrors", code=206, count=5)
    ),
    Response(id=1, result={}),
    Response(id="x", result={"serverTime": 1.5}),
    ErrorResponse(id=3, error=ErrorObject(code=105, message="m", data={"name": "N"})),
    error_response(None, -32600, "batch", {"name": "INVALID_REQUEST"}),
    ParticipantJoinedNotification(params=ParticipantJoinedParams(seq=1, participant=PARTICIPANT)),
    ParticipantLeftNotification(
        params=ParticipantLeftParams(seq=2, participant_id="p1", reason="left")
    ),
    StreamPublishedNotification(
        params=StreamPublishedParams(seq=3, participant_id="p1", audio=True, video=False)
    ),
    StreamUnpublishedNotification(params=StreamUnpublishedParams(seq=3, participant_id="p1")),
    SubscribeRequestNotification(
        params=SubscribeRequestParams(seq=4, exchange_id="x", subscriber_id="p2")
    ),
    SdpOfferNotification(params=SDP),
    SdpAnswerNotification(params=SDP),
    IceCandidateNotification(
        params=IceCandidateNotificationParams(
            seq=5, exchange_id="x", from_="p2", candidate="c", sdp_m_line_index=1
        )
    ),
    SubscriptionEndedNotification(
        params=SubscriptionEndedParams(seq=6, exchange_id="x", participant_id="p2", reason="r")
    ),
    MessageReceivedNotification(
        params=MessageReceivedParams(seq=7, from_="p2", text="yo", private=True)
    ),
    SyncDataNotification(
        params=SyncDataParams(seq=8, from_="p2", position=3, playing=True, server_time=1.0)
    ),
    SessionErrorNotification(
        params=SessionErrorParams(seq=9, code=303, message="timeout", data={"name": "M"})
    ),
    SessionClosedNotification(params=SessionClosedParams(seq=10, session_id="s", reason="done")),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    frame = encode(message)
    decoded = decode(frame)
    assert type(decoded) is type(message)
    assert decoded == message
    assert decode(frame.encode()) == message  # bytes too
    assert encode(decoded) == frame


def test_every_method_and_notification_has_a_round_trip() -> None:
    requests = {m.method for m in MESSAGES if hasattr(m, "id") and hasattr(m, "method")}
    notes = {m.method for m in MESSAGES if not hasattr(m, "id") and hasattr(m, "method")}
    assert requests == METHODS
    assert notes == NOTIFICATION_METHODS
    assert len(METHODS) == 15
    assert len(NOTIFICATION_METHODS) == 13


def test_wire_names_are_camel_case_and_optional_fields_absent() -> None:
    wire = json.loads(encode(MESSAGES[0]))
    assert wire == {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "join",
        "params": {"token": "t", "name": "bob", "participantType": "full"},
    }
    wire = json.loads(encode(MESSAGES[9]))
    assert wire["params"] == {"exchangeId": "x", "candidate": "c"}
    note = json.loads(encode(SdpOfferNotification(params=SDP)))
    assert note["params"] == {"seq": 4, "exchangeId": "x1", "from": "p2", "sdp": "v=0"}
    # a nullable field (streams) stays on the wire as null
    viewer = Participant(participant_id="p", name="n", participant_type="viewer")
    assert json.loads(encode(viewer))["streams"] is None
    assert json.loads(encode(error_response(None, -32600, "m", {})))["id"] is None


def test_results_parse_from_camel_case() -> None:
    join = JoinResult.model_validate(
        {
            "sessionId": "s",
            "participantId": "p",
            "participantSecret": "sec",
            "participantType": "full",
            "roles": [],
            "participants": [json.loads(encode(PARTICIPANT))],
            "syncState": {"from": "p2", "position": 1, "playing": True, "serverTime": 2},
            "seq": 0,
            "resumed": False,
        }
    )
    assert join.participants[0] == PARTICIPANT
    assert join.sync_state == SyncState(from_="p2", position=1, playing=True, server_time=2)
    assert PublishResult.model_validate({"streamId": "st"}).stream_id == "st"
    assert SubscribeResult.model_validate({"exchangeId": "x"}).exchange_id == "x"
    assert PingResult.model_validate({"serverTime": 1}).server_time == 1.0
    assert SessionStateResult.model_validate({"sessionId": "s"}).participants == []
    assert EmptyResult.model_validate({}) == EmptyResult()


def test_unknown_fields_are_kept() -> None:
    frame = '{"jsonrpc":"2.0","method":"participantLeft","params":{"seq":1,"participantId":"p","reason":"left","newField":7},"extra":true}'
    message = decode(frame)
    assert isinstance(message, ParticipantLeftNotification)
    assert message.params.model_extra == {"newField": 7}
    assert json.loads(encode(message))["params"]["newField"] == 7


def _error(frame: str | bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(frame)
    return info.value


@pytest.mark.parametrize(
    ("frame", "code", "request_id"),
    [
        ("not json", -32700, None),
        (b"\xff\xfe\x00", -32700, None),
        ('{"jsonrpc":"2.0","id":1,', -32700, None),
        ("[]", -32600, None),
        ('[{"jsonrpc":"2.0","id":1,"method":"ping"}]', -32600, None),
        ("42", -32600, None),
        ('"text"', -32600, None),
        ("null", -32600, None),
        ("{}", -32600, None),
        ('{"jsonrpc":"2.0","id":3}', -32600, 3),
        ('{"jsonrpc":"1.0","id":4,"method":"ping"}', -32600, 4),
        ('{"jsonrpc":"2.0","id":[1],"method":"ping"}', -32600, None),
        ('{"jsonrpc":"2.0","id":5,"method":"nope"}', -32601, 5),
        ('{"jsonrpc":"2.0","id":"a","method":"join"}', -32602, "a"),
        ('{"jsonrpc":"2.0","id":6,"method":"join","params":{"token":1,"name":"n"}}', -32602, 6),
        ('{"jsonrpc":"2.0","id":7,"method":"publish","params":{"audio":"yes"}}', -32602, 7),
        ('{"jsonrpc":"2.0","id":8,"method":"publish","params":[]}', -32602, 8),
        ('{"jsonrpc":"2.0","method":"sessionError","params":{"seq":1}}', -32602, None),
        ('{"jsonrpc":"2.0","method":"brandNew","params":{"seq":1}}', -32601, None),
    ],
)
def test_bad_frames_raise_typed_errors(frame: str, code: int, request_id: object) -> None:
    error = _error(frame)
    assert error.error.code == code
    assert error.request_id == request_id
    assert error.error.category == "protocol"
    assert error.error.data["name"] == error.error.name
    assert error.error.message


def test_invalid_params_lists_loc_and_msg() -> None:
    error = _error('{"jsonrpc":"2.0","id":6,"method":"join","params":{"token":1}}')
    errors = error.error.data["errors"]
    assert {tuple(e["loc"]) for e in errors} == {("params", "token"), ("params", "name")}
    assert all(isinstance(e["msg"], str) for e in errors)
    assert error.error.data["method"] == "join"


def test_participant_type_is_not_judged_by_the_codec() -> None:
    message = decode(
        '{"jsonrpc":"2.0","id":1,"method":"join","params":{"token":"x","name":"n","participantType":"alien"}}'
    )
    assert isinstance(message, JoinRequest)
    assert message.params.participant_type == "alien"


def test_deeply_nested_frame_is_a_protocol_error() -> None:
    error = _error("[" * 100_000 + "]" * 100_000)
    assert error.error.code in (-32700, -32600)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
frame_like = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", 2])},
    optional={
        "id": st.one_of(st.integers(), st.text(max_size=4), st.none(), st.booleans()),
        "method": st.sampled_from([*sorted(METHODS | NOTIFICATION_METHODS), "x"]),
        "params": st.one_of(json_values, st.dictionaries(st.text(max_size=10), json_values)),
        "result": json_values,
        "error": json_values,
    },
)


def _decode_or_protocol_error(frame: str | bytes) -> None:
    try:
        message = decode(frame)
    except ProtocolError as exc:
        assert exc.error.code in (-32700, -32600, -32601, -32602)
        json.dumps(exc.error.data)  # always serializable, so a server can answer it
    else:
        assert decode(encode(message)) == message


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary()))
def test_decode_of_any_text_or_bytes(frame: str | bytes) -> None:
    _decode_or_protocol_error(frame)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_decode_of_any_json_value(value: Any) -> None:
    _decode_or_protocol_error(json.dumps(value))


@settings(max_examples=500, deadline=None)
@given(frame_like)
def test_decode_of_frame_shaped_values(value: dict[str, Any]) -> None:
    _decode_or_protocol_error(json.dumps(value))


def _general(frame: str) -> Message | None:
    try:
        return _ADAPTER.validate_json(frame)
    except ValidationError:
        return None


@settings(max_examples=500, deadline=None)
@given(frame_like, st.booleans())
def test_fast_paths_agree_with_the_general_decoder(value: dict[str, Any], escape: bool) -> None:
    frame = json.dumps(value)
    if escape:  # an escaped key must not fool the substring shortcuts
        frame = frame.replace('"id"', '"\\u0069d"')
    expected = _general(frame)
    try:
        got: Message | None = decode(frame)
    except ProtocolError:
        got = None
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_fast_paths_agree_on_every_message(message: Message) -> None:
    frame = encode(message)
    assert decode(frame) == _general(frame)
    escaped = frame.replace('"id"', '"\\u0069d"')
    assert type(_general(escaped)) is type(_decode_or_none(escaped))


def _decode_or_none(frame: str | bytes) -> Message | None:
    try:
        return decode(frame)
    except ProtocolError:
        return None


session_error_like = st.fixed_dictionaries(
    {"method": st.sampled_from(["sessionError", "sessionClosed"])},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0"]),
        "id": st.integers(),
        "params": st.fixed_dictionaries(
            {},
            optional={
                "seq": st.one_of(st.integers(), st.text(max_size=3), st.booleans()),
                "code": st.one_of(st.integers(), st.floats(allow_nan=False), st.none()),
                "message": st.one_of(st.text(max_size=5), st.integers()),
                "data": st.one_of(st.dictionaries(st.text(max_size=5), json_values), st.none()),
                "extra": json_values,
            },
        ),
    },
)


def _frames(
    value: dict[str, Any], escape: bool, as_bytes: bool, tail: str = ""
) -> tuple[str, str | bytes]:
    """``value`` as a text frame (``"id"`` escaped, ``tail`` keys appended), and as sent."""
    frame = json.dumps(value)
    if escape:  # an escaped key must not fool the substring shortcuts
        frame = frame.replace('"id"', '"\\u0069d"')
    if tail and frame.endswith("}"):
        frame = frame[:-1] + tail + "}"  # a duplicate or an unknown key at the top
    return frame, frame.encode() if as_bytes else frame


def _with_one_change(value: dict[str, Any], key: str, new: Any) -> dict[str, Any]:
    """A copy of ``value`` with ``key`` (a sessionError param, or a top-level key) set or dropped."""
    changed = json.loads(json.dumps(value))
    target = changed["params"] if key in ("seq", "code", "message", "data") else changed
    if new is _DROP:
        target.pop(key, None)
    else:
        target[key] = new
    return changed


_DROP: Any = object()
valid_session_error = st.builds(
    lambda seq, code, message, data: {
        "jsonrpc": "2.0",
        "method": "sessionError",
        "params": {"seq": seq, "code": code, "message": message, **data},
    },
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(max_size=8),
    st.just({})
    | st.fixed_dictionaries({"data": st.dictionaries(st.text(max_size=5), json_values)}),
)
# Mostly valid frames, many with one key missing or of a wrong type, and the loose ones.
session_error_near = st.one_of(
    valid_session_error,
    st.builds(
        _with_one_change,
        valid_session_error,
        st.sampled_from(["jsonrpc", "method", "id", "seq", "code", "message", "data"]),
        st.one_of(st.just(_DROP), json_values, st.booleans(), st.floats(allow_nan=False)),
    ),
    session_error_like,
)


@settings(max_examples=500, deadline=None)
@given(session_error_near, st.booleans(), st.booleans())
def test_session_error_shortcut_agrees_with_decode(
    value: dict[str, Any], escape: bool, as_bytes: bool
) -> None:
    frame, raw = _frames(value, escape, as_bytes)
    fast = decode_session_error(raw)
    full = _decode_or_none(frame)
    if fast is None:
        # the shortcut may decline a frame, never accept one decode refuses
        return
    assert isinstance(full, SessionErrorNotification)
    assert full.params.model_dump() == {"data": {}, **fast}


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=8), st.sampled_from(["message", "name", "key"]))
def test_bytes_that_are_not_utf8_are_never_read(junk: bytes, where: str) -> None:
    """The client hands text frames to the codec undecoded: it must refuse bad UTF-8."""
    note = {"seq": 1, "code": 206, "message": "@", "data": {"name": "@"}}
    template = json.dumps({"jsonrpc": "2.0", "method": "sessionError", "params": note})
    if where == "key":
        template = template.replace('"name"', '"@"')
        frame = template.encode().replace(b"@", junk, 1)
    else:
        at = template.index('"@"', template.index(where))
        frame = (template[: at + 1] + template[at + 2 :]).encode()
        frame = frame[: at + 1] + junk + frame[at + 1 :]
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError:
        assert decode_session_error(frame) is None
        with pytest.raises(ProtocolError) as refused:
            decode(frame)
        assert refused.value.error.code == -32700
    else:  # UTF-8: the bytes read exactly as their text does
        assert decode_session_error(frame) == decode_session_error(text)
        assert _decode_or_none(frame) == _decode_or_none(text)


@contextlib.contextmanager
def _speedups(on: bool) -> Iterator[None]:
    """``session_error_parts`` with msgspec (the speedups extra) or by its checks."""
    assert _codec.SPEEDUPS, "the dev extra installs msgspec: both ways must be tested"
    saved = _codec._FAST_NOTE
    if not on:
        _codec._FAST_NOTE = None
    try:
        yield
    finally:
        _codec._FAST_NOTE = saved


@pytest.mark.parametrize("speedups", [True, False], ids=["msgspec", "checks"])
@settings(max_examples=500, deadline=None)
@given(
    session_error_near,
    st.booleans(),
    st.booleans(),
    st.sampled_from(["", ',"id":1', ',"extra":2', ',"method":"other"', ',"params":{}']),
)
def test_session_error_parts_agree_with_decode(
    speedups: bool, value: dict[str, Any], escape: bool, as_bytes: bool, tail: str
) -> None:
    """Either way may decline a frame; neither accepts one decode refuses, and values agree."""
    frame, raw = _frames(value, escape, as_bytes, tail)
    with _speedups(speedups):
        parts = _codec.session_error_parts(raw)
    full = _decode_or_none(frame)
    if parts is None:
        return
    assert isinstance(full, SessionErrorNotification)
    seq, code, message, data = parts
    dumped = full.params.model_dump()
    assert (seq, code, message) == (dumped["seq"], dumped["code"], dumped["message"])
    assert (data if data is not None else {}) == dumped["data"]
    for got, want in ((seq, dumped["seq"]), (code, dumped["code"]), (message, dumped["message"])):
        assert type(got) is type(want)


def test_the_speedups_read_the_plain_shape() -> None:
    """With msgspec, the reference server's frames take the fast way (it declines nothing)."""
    note = {
        "seq": 7,
        "code": 206,
        "message": "full",
        "data": {"name": "SESSION_IS_FULL_ERROR_CODE"},
    }
    frame = json.dumps({"jsonrpc": "2.0", "method": "sessionError", "params": note}).encode()
    calls: list[bytes | str] = []
    real = _codec._FAST_NOTE

    def counted(raw: bytes | str) -> Any:
        calls.append(raw)
        return real(raw)

    _codec._FAST_NOTE = counted
    try:
        parts = _codec.session_error_parts(frame)
    finally:
        _codec._FAST_NOTE = real
    assert calls == [frame]
    assert parts == (7, 206, "full", {"name": "SESSION_IS_FULL_ERROR_CODE"})


response_like = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]),
        "id": st.one_of(st.integers(), st.text(max_size=3), st.booleans(), st.floats(), st.none()),
        "result": st.one_of(st.dictionaries(st.text(max_size=5), json_values), json_values),
        "error": st.fixed_dictionaries({"code": st.integers(), "message": st.text(max_size=3)}),
        "method": st.sampled_from(["ping", "sessionError"]),
        "params": st.dictionaries(st.text(max_size=3), json_values, max_size=2),
    },
)


valid_response = st.fixed_dictionaries(
    {
        "jsonrpc": st.just("2.0"),
        "id": st.integers() | st.text(max_size=4),
        "result": st.dictionaries(st.text(max_size=5), json_values),
    }
)
# Mostly plain answers, many with one key missing, mistyped or added, and the loose ones.
response_near = st.one_of(
    valid_response,
    st.builds(
        _with_one_change,
        valid_response,
        st.sampled_from(["jsonrpc", "id", "result", "error", "method", "params"]),
        st.one_of(st.just(_DROP), json_values, st.booleans(), st.floats(allow_nan=False)),
    ),
    response_like,
)


@settings(max_examples=500, deadline=None)
@given(response_near, st.booleans(), st.booleans())
def test_response_shortcut_agrees_with_decode(
    value: dict[str, Any], escape: bool, as_bytes: bool
) -> None:
    frame, raw = _frames(value, escape, as_bytes)
    fast = decode_response(raw)
    full = _decode_or_none(frame)
    if fast is None:
        # the shortcut may decline a frame, never accept one decode refuses
        return
    assert isinstance(full, Response)
    assert (full.id, full.result) == fast
    assert type(full.id) is type(fast[0])


def test_response_shortcut_takes_a_plain_answer() -> None:
    assert decode_response('{"jsonrpc":"2.0","id":7,"result":{"serverTime":1.5}}') == (
        7,
        {"serverTime": 1.5},
    )
    for declined in (
        '{"jsonrpc":"2.0","id":7,"result":{},"x":1}',
        '{"jsonrpc":"2.0","id":true,"result":{}}',
        '{"jsonrpc":"2.0","id":7,"result":[]}',
        '{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"m"}}',
        "not json",
    ):
        assert decode_response(declined) is None
