"""The client's sans-I/O core, fed frames by hand: no socket, no event loop, no clock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roomsignal import ErrorCode, Session
from roomsignal.client._core import MAX_SEQ_JUMP, Answer, Broken, ClientCore
from roomsignal.errors import SessionError
from roomsignal.protocol import PingRequest, StreamPublishedParams

NOW = 1_700_000_000.25


class Waiter:
    """What the shell's future is to the core: something that may be done."""

    def __init__(self) -> None:
        self.settled = False

    def done(self) -> bool:
        return self.settled


def _join_result(seq: int = 0, *, resumed: bool = False, **more: Any) -> dict[str, Any]:
    return {
        "sessionId": "room",
        "participantId": "p1",
        "participantSecret": "s3cret",
        "participantType": "full",
        "roles": ["moderator"],
        "participants": more.pop("participants", []),
        "seq": seq,
        "resumed": resumed,
        **more,
    }


def _response(request_id: object, result: dict[str, Any]) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def _error(request_id: object, code: int, message: str = "no") -> str:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "error": {"code": code, "message": message, "data": {"name": "X"}},
        }
    )


def _note(method: str, seq: int, **params: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": {"seq": seq, **params}})


def _session_error(seq: int, code: int = 206) -> str:
    return _note("sessionError", seq, code=code, message="full", data={"name": "X"})


def _participant(pid: str, name: str = "x") -> dict[str, Any]:
    return {
        "participantId": pid,
        "name": name,
        "participantType": "full",
        "roles": [],
        "streams": None,
        "metadata": {},
    }


def _joined(seq: int = 0, *, max_seq_jump: int = MAX_SEQ_JUMP, **more: Any) -> ClientCore[Waiter]:
    """A core whose join was answered with ``seq``."""
    core: ClientCore[Waiter] = ClientCore(max_seq_jump=max_seq_jump)
    waiter = Waiter()
    request_id, _ = core.request("join", lambda i: PingRequest(id=i), waiter)
    out = core.receive(_response(request_id, _join_result(seq, **more)), NOW)
    assert isinstance(out, Answer) and out.waiter is waiter
    core.forget(request_id)
    return core


# -- requests and responses ---------------------------------------------------------


def test_requests_get_increasing_ids_and_frames_carrying_them() -> None:
    core: ClientCore[Waiter] = ClientCore()
    first = core.request("ping", lambda i: PingRequest(id=i), Waiter())
    second = core.request("ping", lambda i: PingRequest(id=i), Waiter())
    assert (first[0], second[0]) == (1, 2)
    assert json.loads(first[1]) == {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
    assert json.loads(core.frame(lambda i: PingRequest(id=i)))["id"] == 3


def test_a_response_is_matched_to_its_request_by_id_in_any_order() -> None:
    core = _joined()
    one, two = Waiter(), Waiter()
    id1, _ = core.request("ping", lambda i: PingRequest(id=i), one)
    id2, _ = core.request("getSessionState", lambda i: PingRequest(id=i), two)
    out2 = core.receive(_response(id2, {"state": 2}), NOW)
    out1 = core.receive(_response(id1, {"serverTime": 1.0}), NOW)
    assert isinstance(out2, Answer) and out2.waiter is two and out2.result == {"state": 2}
    assert out2.method == "getSessionState" and out2.error is None
    assert isinstance(out1, Answer) and out1.waiter is one and out1.method == "ping"


def test_a_response_nobody_waits_for_is_dropped() -> None:
    core = _joined()
    waiter = Waiter()
    request_id, _ = core.request("ping", lambda i: PingRequest(id=i), waiter)
    assert core.receive(_response(999, {}), NOW) is None  # unknown id
    waiter.settled = True  # e.g. it timed out as the answer came
    assert core.receive(_response(request_id, {}), NOW) is None
    core.forget(request_id)
    assert core.receive(_response(request_id, {}), NOW) is None


def test_an_error_response_becomes_a_session_error_for_its_request() -> None:
    core = _joined()
    waiter = Waiter()
    request_id, _ = core.request("publish", lambda i: PingRequest(id=i), waiter)
    out = core.receive(_error(request_id, 105, "not streaming"), NOW)
    assert isinstance(out, Answer) and out.waiter is waiter and out.result is None
    error = out.error
    assert isinstance(error, SessionError)
    assert (error.code, error.name, error.method, error.source) == (
        105,
        "USER_NOT_STREAMING_ERROR_CODE",
        "publish",
        "server",
    )
    assert (error.session_id, error.participant_id, error.received_at) == ("room", "p1", NOW)


def test_an_error_response_for_no_request_is_still_reported() -> None:
    core = _joined()
    out = core.receive(_error(None, -32600), NOW)
    assert isinstance(out, Answer) and out.waiter is None and out.method is None
    assert out.error is not None and out.error.code == -32600


def test_take_pending_hands_over_every_request_in_flight() -> None:
    core: ClientCore[Waiter] = ClientCore()
    a, b = Waiter(), Waiter()
    core.request("ping", lambda i: PingRequest(id=i), a)
    core.request("leave", lambda i: PingRequest(id=i), b)
    assert core.take_pending() == [("ping", a), ("leave", b)]
    assert core.take_pending() == []


# -- join results and resume ------------------------------------------------------------


def test_a_join_result_is_adopted_before_the_next_frame_is_read() -> None:
    core = _joined(7, participants=[_participant("p2", "alice")])
    assert (core.session_id, core.participant_id, core.participant_secret) == (
        "room",
        "p1",
        "s3cret",
    )
    assert core.roles == ("moderator",) and core.last_seq == 7
    assert list(core.participants) == ["p2"] and [p.name for p in core.join_snapshot] == ["alice"]
    assert core.receive(_session_error(7), NOW) is None  # counted by the join already
    out = core.receive(_session_error(8), NOW)
    assert isinstance(out, tuple) and out[0] == "session_error"


def test_join_params_carry_the_resume_only_when_asked() -> None:
    core = _joined(3)
    fresh = core.join_params(
        token="t", name="bot", participant_type="full", metadata=None, resume=False
    )
    assert fresh.old_participant_secret is None and fresh.last_seq is None
    resume = core.join_params(
        token="t", name="bot", participant_type="full", metadata={"a": 1}, resume=True
    )
    assert (resume.old_participant_secret, resume.last_seq, resume.metadata) == (
        "s3cret",
        3,
        {"a": 1},
    )


def test_a_resumed_join_keeps_last_seq_and_counts_the_replay() -> None:
    core = _joined(2, participants=[_participant("p2")])
    waiter = Waiter()
    request_id, _ = core.request("join", lambda i: PingRequest(id=i), waiter)
    core.receive(_response(request_id, _join_result(6, resumed=True)), NOW)
    assert core.last_seq == 2 and core.replayed == 4
    assert list(core.participants) == ["p2"]  # the mirror stays: nothing was reset
    delivered = [core.receive(_session_error(seq), NOW) for seq in (1, 2, 3, 4)]
    assert [d is not None for d in delivered] == [False, False, True, True]


def test_a_malformed_join_result_is_left_for_the_caller_to_report() -> None:
    core: ClientCore[Waiter] = ClientCore()
    request_id, _ = core.request("join", lambda i: PingRequest(id=i), Waiter())
    out = core.receive(_response(request_id, {"sessionId": 5}), NOW)
    assert isinstance(out, Answer) and out.result == {"sessionId": 5}
    assert core.session_id is None and core.participant_secret is None


# -- notifications and the mirror --------------------------------------------------------


def test_a_notification_is_delivered_once_duplicates_and_replays_dropped() -> None:
    core = _joined()
    outs = [core.receive(_session_error(seq), NOW) for seq in (1, 1, 2, 1, 3)]
    assert [out is not None for out in outs] == [True, False, True, False, True]
    assert core.last_seq == 3


def test_a_gap_is_delivered_and_counted() -> None:
    core = _joined()
    assert core.receive(_session_error(1), NOW) is not None
    assert core.receive(_session_error(5), NOW) is not None
    assert core.last_seq == 5
    assert core.receive(_session_error(4), NOW) is None


def test_a_seq_that_cannot_be_real_breaks_the_connection_and_keeps_last_seq() -> None:
    core = _joined()
    for seq in range(1, 6):
        assert core.receive(_session_error(seq), NOW) is not None
    for frame in (
        _session_error(10**18),
        _note("participantLeft", 5 + MAX_SEQ_JUMP + 1, participantId="p2", reason="left"),
    ):
        out = core.receive(frame, NOW)
        assert isinstance(out, Broken), frame
        assert out.error.code == ErrorCode.INVALID_PARAMS and out.error.source == "client"
        assert out.error.data["lastSeq"] == 5 and out.error.received_at == NOW
        assert core.last_seq == 5  # the resume asks from here
    assert core.receive(_session_error(5 + MAX_SEQ_JUMP), NOW) is not None  # the bound itself
    assert core.last_seq == 5 + MAX_SEQ_JUMP


def test_a_session_error_notification_is_stamped_with_the_session_and_the_time() -> None:
    core = _joined()
    out = core.receive(_session_error(1, code=303), NOW)
    assert isinstance(out, tuple)
    event, error = out
    assert event == "session_error" and isinstance(error, SessionError)
    assert (error.code, error.session_id, error.participant_id, error.received_at) == (
        303,
        "room",
        "p1",
        NOW,
    )
    assert error.source == "server"


def test_participants_and_their_streams_follow_the_notifications() -> None:
    core = _joined()
    core.receive(_note("participantJoined", 1, participant=_participant("p2", "bob")), NOW)
    assert core.participants["p2"].name == "bob"
    out = core.receive(
        _note("streamPublished", 2, participantId="p2", audio=True, video=False), NOW
    )
    assert isinstance(out, tuple) and out[0] == "stream_published"
    assert isinstance(out[1], StreamPublishedParams)
    streams = core.participants["p2"].streams
    assert streams is not None and (streams.audio, streams.video) == (True, False)
    core.receive(_note("streamUnpublished", 3, participantId="p2"), NOW)
    assert core.participants["p2"].streams is None
    out = core.receive(_note("participantLeft", 4, participantId="p2", reason="left"), NOW)
    assert isinstance(out, tuple) and out[0] == "participant_left"
    assert "p2" not in core.participants
    # A replayed join of someone who already left changes nothing.
    core.receive(_note("participantJoined", 1, participant=_participant("p2")), NOW)
    assert "p2" not in core.participants


def test_sync_data_becomes_the_sync_state() -> None:
    core = _joined()
    frame = _note(
        "syncData",
        1,
        **{"from": "p9", "position": 12.5, "playing": True, "rate": 1.0, "serverTime": 2.0},
    )
    out = core.receive(frame, NOW)
    assert isinstance(out, tuple) and out[0] == "sync_data"
    assert core.sync_state is not None and core.sync_state.position == 12.5


def test_relayed_notifications_keep_their_kind() -> None:
    core = _joined()
    frames = {
        "subscribe_request": _note("subscribeRequest", 1, exchangeId="e", subscriberId="p2"),
        "sdp_offer": _note("sdpOffer", 2, exchangeId="e", sdp="v=0", **{"from": "p2"}),
        "message": _note("messageReceived", 3, text="hi", private=False, **{"from": "p2"}),
    }
    for event, frame in frames.items():
        out = core.receive(frame, NOW)
        assert isinstance(out, tuple) and out[0] == event


def test_session_closed_makes_the_session_final() -> None:
    core = _joined()
    assert core.final_reason(1006, "gone") is None
    out = core.receive(_note("sessionClosed", 1, sessionId="room", reason="done"), NOW)
    assert isinstance(out, tuple) and out[0] == "session_closed"
    assert core.final == (None, "the session was closed: done")
    assert core.final_reason(1006, "gone") == core.final


# -- frames that cannot be read ----------------------------------------------------------


def test_garbage_is_a_protocol_error_stamped_with_the_session() -> None:
    core = _joined()
    for frame, code in (("not json", -32700), ("[1]", -32600), (b"\xff\xfe", -32700)):
        out = core.receive(frame, NOW)
        assert isinstance(out, tuple) and out[0] == "session_error"
        error = out[1]
        assert (error.code, error.source, error.session_id, error.received_at) == (
            code,
            "client",
            "room",
            NOW,
        )
    assert core.last_seq == 0


def test_a_request_from_the_server_is_a_protocol_error() -> None:
    core = _joined()
    out = core.receive(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}), NOW)
    assert isinstance(out, tuple)
    assert out[1].code == ErrorCode.INVALID_REQUEST
    assert "unexpected" in out[1].message


# -- what a close or a failed rejoin means ------------------------------------------------


def test_close_codes_and_what_they_mean() -> None:
    core: ClientCore[Waiter] = ClientCore()
    assert core.final_reason(None, "dropped") is None
    assert core.final_reason(1006, "abnormal") is None
    replaced = core.final_reason(4001, "replaced")
    assert replaced is not None and replaced[0] == ErrorCode.CONNECTION_REPLACED_ERROR_CODE
    normal = core.final_reason(1000, "bye")
    assert normal is not None and normal[0] == ErrorCode.CONNECTION_LOST_ERROR_CODE


def test_failed_rejoin_verdicts() -> None:
    core: ClientCore[Waiter] = ClientCore()
    verdict = core.failed_rejoin
    assert verdict(106, "X", resuming=True, rejoin_on_reset=True)[0] == "fresh"
    assert verdict(106, "X", resuming=True, rejoin_on_reset=False)[0] == "stop"
    assert verdict(106, "X", resuming=False, rejoin_on_reset=True)[0] == "stop"
    assert verdict(1100, "TOKEN_EXPIRED", resuming=True, rejoin_on_reset=True)[0] == "stop"
    for code in (206, 104, 1101):
        assert verdict(code, "X", resuming=False, rejoin_on_reset=True)[0] == "stop"
    assert verdict(201, "X", resuming=True, rejoin_on_reset=True)[0] == "retry"
    # Once we had a seat, a fresh rejoin's 104 is our own old seat not let go yet.
    core.participant_secret = "s_old"
    assert verdict(104, "X", resuming=False, rejoin_on_reset=True)[0] == "retry"
    assert verdict(206, "X", resuming=False, rejoin_on_reset=True)[0] == "stop"


def test_the_core_imports_neither_asyncio_nor_websockets() -> None:
    """Load the core in a fresh interpreter where importing asyncio or websockets fails.

    The ``roomsignal`` and ``roomsignal.client`` package modules are stood in
    for (their ``__init__`` imports ``Session``), so only what the core itself
    pulls in is imported.
    """
    src = Path(__file__).resolve().parents[2] / "src" / "roomsignal"
    script = f"""
import importlib.abc, sys, types
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("asyncio", "websockets"):
            raise ImportError("the core imported " + name)
        return None
sys.meta_path.insert(0, Block())
for name, path in (("roomsignal", {str(src)!r}), ("roomsignal.client", {str(src / "client")!r})):
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
import roomsignal.client._core as core
assert core.ClientCore
print(sorted(n for n in sys.modules if n.split(".")[0] in ("asyncio", "websockets")))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- property: each seq at most once, in order, whatever the frames ------------------------


def _frames() -> st.SearchStrategy[list[tuple[str, Any]]]:
    """Steps: a notification by seq (replays, duplicates, gaps), a response, or garbage."""
    note = st.tuples(st.just("note"), st.integers(1, 40))
    response = st.tuples(st.just("response"), st.integers(1, 12))
    error = st.tuples(st.just("error"), st.integers(1, 12))
    garbage = st.tuples(
        st.just("garbage"),
        st.sampled_from(
            ["", "{", "null", "[]", '{"jsonrpc":"2.0"}', _note("nope", 3), "\x00", '{"id":true}']
        ),
    )
    kinds = st.sampled_from(
        [
            "sessionError",
            "participantJoined",
            "participantLeft",
            "streamUnpublished",
            "messageReceived",
        ]
    )
    typed = st.tuples(st.just("typed"), st.tuples(kinds, st.integers(1, 40)))
    return st.lists(st.one_of(note, response, error, garbage, typed), max_size=80)


def _typed_frame(kind: str, seq: int) -> str:
    if kind == "sessionError":
        return _session_error(seq)
    if kind == "participantJoined":
        return _note(kind, seq, participant=_participant(f"p{seq}"))
    if kind == "participantLeft":
        return _note(kind, seq, participantId=f"p{seq - 1}", reason="left")
    if kind == "streamUnpublished":
        return _note(kind, seq, participantId="p2")
    return _note(kind, seq, text="hi", private=False, **{"from": "p2"})


@settings(max_examples=300, deadline=None)
@given(start=st.integers(0, 5), jump=st.integers(1, 50), steps=_frames())
def test_each_seq_is_delivered_at_most_once_and_in_order(
    start: int, jump: int, steps: list[tuple[str, Any]]
) -> None:
    core = _joined(start, max_seq_jump=jump)
    waiters = {}
    for _ in range(12):
        waiter = Waiter()
        request_id, _ = core.request("ping", lambda i: PingRequest(id=i), waiter)
        waiters[request_id] = waiter
    delivered: list[int] = []
    answered: list[int] = []
    for kind, value in steps:
        frame: str
        if kind == "note":
            frame = _session_error(value)
        elif kind == "typed":
            frame = _typed_frame(*value)
        elif kind == "response":
            frame = _response(value, {"n": value})
        elif kind == "error":
            frame = _error(value, 201)
        else:
            frame = value
        before = core.last_seq
        out = core.receive(frame, NOW)
        if isinstance(out, Broken):  # a jump past the bound: nothing delivered, nothing counted
            assert core.last_seq == before and out.error.data["seq"] - before > jump
            continue
        if isinstance(out, Answer):
            assert out.waiter is not None or out.error is not None
            if out.error is None:  # a result only ever goes to a live waiter
                assert out.waiter is not None and not out.waiter.done()
            if out.waiter is not None and not out.waiter.done():
                out.waiter.settled = True  # as the shell settles the future
                answered.append(next(i for i, w in waiters.items() if w is out.waiter))
        elif out is not None:
            event, payload = out
            seq = getattr(payload, "seq", None)
            if event == "session_error" and payload.source == "client":
                assert kind == "garbage"  # only unreadable frames are the client's own
                continue
            if seq is None:
                seq = int(json.loads(frame)["params"]["seq"])
            assert seq - before <= jump
            delivered.append(seq)
    assert delivered == sorted(set(delivered)), "a seq was delivered twice or out of order"
    assert all(seq > start for seq in delivered)
    assert core.last_seq == max([start, *delivered])
    assert len(answered) == len(set(answered)), "a request was answered twice"


def test_only_an_int_or_a_str_is_a_response_id() -> None:
    core = _joined()
    waiter = Waiter()
    request_id, _ = core.request("ping", lambda i: PingRequest(id=i), waiter)
    assert request_id == 2
    core.request("ping", lambda i: PingRequest(id=i), Waiter())  # request 3
    for bad in (True, 2.0, [2], {"id": 2}):
        out = core.receive(_response(bad, {}), NOW)
        assert isinstance(out, tuple) and out[1].code == ErrorCode.INVALID_REQUEST, bad
    assert core.receive(_response("2", {}), NOW) is None  # a str id, but not ours
    out = core.receive(_response(2, {}), NOW)
    assert isinstance(out, Answer) and out.waiter is waiter


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_seq_jump"):
        ClientCore(max_seq_jump=0)
    with pytest.raises(ValueError, match="max_queue"):
        Session("ws://127.0.0.1:1", token="t", name="x", max_queued_events=0)


@given(st.integers(min_value=0, max_value=2**53))
def test_ping_frame_is_the_encoded_ping_request(request_id: int) -> None:
    from roomsignal.client._core import ping_frame
    from roomsignal.protocol import encode

    assert ping_frame(request_id) == encode(PingRequest(id=request_id))


def test_participants_share_fields_sets_and_keep_their_values() -> None:
    from roomsignal.client._compact import compact
    from roomsignal.protocol import Participant

    raw = {"participantId": "p1", "name": "a", "participantType": "full", "roles": ["publisher"]}
    one = compact(Participant.model_validate(raw))
    two = compact(Participant.model_validate({**raw, "participantId": "p2", "extraField": 1}))
    three = compact(Participant.model_validate({**raw, "participantId": "p3"}))
    assert one.model_fields_set is three.model_fields_set
    assert one.model_fields_set == {"participant_id", "name", "participant_type", "roles"}
    assert two.model_extra == {"extraField": 1}
    assert one.participant_type is three.participant_type
    assert one.roles == ["publisher"] and one.roles is not three.roles
    copied = compact(one.model_copy(update={"streams": None, "name": "b"}))
    assert copied.name == "b" and one.name == "a"
    assert one.model_fields_set == {"participant_id", "name", "participant_type", "roles"}
    assert "streams" in copied.model_fields_set
    assert one.model_dump(exclude_unset=True) == raw


async def test_flag_wakes_every_waiter_even_if_cleared_at_once() -> None:
    import asyncio

    from roomsignal.client._flag import Flag

    flag = Flag()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    flag.clear()  # as a failed connect does: wake them, they look at the state
    await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert not flag.is_set()
    cancelled = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert flag._waiters == []  # a cancelled wait leaves nothing behind
    flag.set()
    await asyncio.wait_for(flag.wait(), 5)  # set: returns at once


def test_requests_in_flight_are_kept_for_the_resume_with_their_ids() -> None:
    """A drop keeps what can be sent again; a join cannot; ids go on counting."""
    core: ClientCore[Waiter] = ClientCore()
    join, chat, ping = Waiter(), Waiter(), Waiter()
    core.request("join", lambda i: PingRequest(id=i), join, resend=False)
    _, chat_frame = core.request("sendMessage", lambda i: PingRequest(id=i), chat)
    _, ping_frame = core.request("ping", lambda i: PingRequest(id=i), ping)
    assert core.take_pending(keep_resendable=True) == [("join", join)]
    assert core.resend() == [chat_frame, ping_frame]  # oldest first, the same frames
    ping.settled = True  # answered meanwhile: not sent again
    assert core.resend() == [chat_frame]
    assert core.request("ping", lambda i: PingRequest(id=i), Waiter())[0] == 4
    assert [m for m, _ in core.take_pending()] == ["sendMessage", "ping", "ping"]
    assert core.resend() == []
