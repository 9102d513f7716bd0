"""The server's ping shortcut answers exactly what the general path answers, or declines."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from roomsignal.protocol import PingRequest, PingResult
from roomsignal.server import Rooms
from roomsignal.server._frames import BadFrame, parse_request, ping_answer, response_frame
from roomsignal.server._rooms import Send

values = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3)
)
ping_like = st.fixed_dictionaries(
    {},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2]),
        "id": values,
        "method": st.sampled_from(["ping", "join", "Ping"]),
        "params": st.one_of(st.dictionaries(st.text(max_size=3), values, max_size=2), values),
        "extra": values,
    },
)

_DROP: Any = object()


def _with_one_change(value: dict[str, Any], key: str, new: Any) -> dict[str, Any]:
    changed = dict(value)
    if new is _DROP:
        changed.pop(key, None)
    else:
        changed[key] = new
    return changed


plain_ping = st.fixed_dictionaries(
    {
        "jsonrpc": st.just("2.0"),
        "id": st.integers() | st.text(max_size=4),
        "method": st.just("ping"),
    },
    optional={"params": st.just({})},
)
# Mostly plain pings, many one key away from one (dropped, mistyped or added), and loose ones.
ping_near = st.one_of(
    plain_ping,
    st.builds(
        _with_one_change,
        plain_ping,
        st.sampled_from(["jsonrpc", "id", "method", "params", "extra"]),
        st.just(_DROP) | values | st.dictionaries(st.text(max_size=3), values, max_size=2),
    ),
    ping_like,
)


def _general(frame: str, now: float) -> str | None:
    """What the server answers through parse_request and Rooms, if it is a ping."""
    parsed = parse_request(frame, allow_simulation=False)
    if isinstance(parsed, BadFrame) or not isinstance(parsed, PingRequest):
        return None
    effects = Rooms("s" * 32).handle(1, parsed, now)
    assert len(effects) == 1 and isinstance(effects[0], Send)
    return effects[0].frame


@settings(max_examples=500, deadline=None)
@given(ping_near, st.floats(min_value=0, max_value=1e20, allow_nan=False))
def test_the_shortcut_never_answers_what_the_general_path_would_not(
    value: dict[str, Any], now: float
) -> None:
    frame = json.dumps(value)
    fast = ping_answer(frame, now)
    if fast is None:
        return  # declined: the general path decides
    assert fast == _general(frame, now)
    assert json.loads(fast)["result"]["serverTime"] == now


@settings(max_examples=300, deadline=None)
@given(st.integers() | st.text(), st.floats(min_value=0, max_value=1e20, allow_nan=False))
def test_a_plain_ping_is_answered_as_response_frame_would(
    request_id: int | str, now: float
) -> None:
    for frame in (
        json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "ping"}),
        json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "ping", "params": {}}),
    ):
        assert ping_answer(frame, now) == response_frame(request_id, PingResult(server_time=now))


def test_odd_pings_are_declined() -> None:
    for frame in (
        '{"jsonrpc":"2.0","id":true,"method":"ping"}',
        '{"jsonrpc":"2.0","id":1.0,"method":"ping"}',
        '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":1}}',
        '{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}',
        '{"jsonrpc":"2.0","method":"ping","params":{}}',
        '{"jsonrpc":"2.0","id":1,"method":"ping","x":1}',
        '{"id":1,"method":"ping"}',
        '{"jsonrpc":"2.0","id":1,"method":"ping"',
        "[]",
    ):
        assert ping_answer(frame, 1.0) is None, frame


def test_a_refused_frame_with_a_readable_method_names_it() -> None:
    """PROTOCOL: error.data carries "method" where one applies, -32600 included."""
    for frame, request_id in (
        ('{"jsonrpc":"2.0","method":"join","params":{}}', None),  # no id: a notification
        ('{"jsonrpc":"1.0","id":4,"method":"ping"}', 4),
        ('{"jsonrpc":"2.0","id":1.5,"method":"leave"}', None),
        (
            '{"jsonrpc":"2.0","method":"sessionError","params":{"seq":1,"code":1,"message":"m"}}',
            None,
        ),
    ):
        bad = parse_request(frame, allow_simulation=False)
        assert isinstance(bad, BadFrame), frame
        assert bad.code == -32600 and bad.request_id == request_id, frame
        assert bad.data["method"] == json.loads(frame)["method"], frame
    for frame in ('{"jsonrpc":"2.0","id":1,"method":5}', "[1]", '{"id":1}'):
        bad = parse_request(frame, allow_simulation=False)
        assert isinstance(bad, BadFrame) and bad.code == -32600
        assert "method" not in bad.data, frame
