"""The room state machine alone: no sockets, no event loop, an injected clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from roomsignal.catalog import ErrorCode, lookup
from roomsignal.protocol import Notification, decode
from roomsignal.server import Denial, ExchangeState, Rooms, ServerConfig
from roomsignal.server._rooms import Abort, Burst, Close, Effect, Send
from roomsignal.tokens import mint

SECRET = "rooms-unit-secret-0123456789abcdef-0123"
T0 = 1_800_000_000.0
ROOM_CODES = {101, 102, 103, 104, 105, 106, 107, 108, 201, 203, 204, 206, 303, 1100, 1101}


class Driver:
    """Feeds requests to ``Rooms`` as decoded frames and reads the effects back."""

    def __init__(self, **config: Any) -> None:
        config.setdefault("sdp_timeout", 10.0)
        config.setdefault("allow_simulation", True)
        self.rooms = Rooms(SECRET, ServerConfig(**config))
        self.now = T0
        self.ids: dict[int, str] = {}
        self.secrets: dict[int, str] = {}
        self._next = 0

    def request(self, conn: int, method: str, **params: Any) -> list[Effect]:
        self._next += 1
        frame = {"jsonrpc": "2.0", "id": self._next, "method": method, "params": params}
        request = decode(json.dumps(frame))
        return self.rooms.handle(conn, request, self.now)  # type: ignore[arg-type]

    def join(self, conn: int, name: str, session: str = "room", **claims: Any) -> dict[str, Any]:
        kind = claims.pop("participant_type", "full")
        effects = self.request(
            conn,
            "join",
            token=mint(SECRET, session, now=self.now, **claims),
            name=name,
            participantType=kind,
        )
        answer = frames(effects, conn)[0]
        result: dict[str, Any] = answer["result"]
        self.ids[conn] = result["participantId"]
        self.secrets[conn] = result["participantSecret"]
        return result


def frames(effects: list[Effect], conn: int) -> list[dict[str, Any]]:
    """The frames written to ``conn``, parsed."""
    return [json.loads(e.frame) for e in effects if isinstance(e, Send) and e.conn == conn]


def notes(effects: list[Effect], conn: int, method: str | None = None) -> list[dict[str, Any]]:
    found = [f for f in frames(effects, conn) if "method" in f]
    if method is not None:
        found = [f for f in found if f["method"] == method]
    return [f["params"] for f in found]


def test_every_room_code_has_a_denial_and_every_denial_a_catalog_name() -> None:
    codes = {int(d.value.code) for d in Denial}
    assert codes >= ROOM_CODES
    for denial in Denial:
        assert lookup(denial.value.code).name == ErrorCode(denial.value.code).name
        assert denial.value.message


def test_docs_list_every_condition_code() -> None:
    """Section 3's table has one row per code the server emits, with its catalog name."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
    section = docs.read_text().split("\n## 3. ", 1)[1].split("\n## ", 1)[0]
    rows: dict[int, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3 and cells[0].lstrip("-").isdigit():
            code = int(cells[0])
            assert code not in rows, f"code {code} has two rows"
            rows[code] = (cells[1], cells[2])
    # The catalog declares the codes the server emits first, 101 to 1101.
    declared = list(ErrorCode)
    emitted = {int(code) for code in declared[: declared.index(ErrorCode.UNKNOWN_ERROR)]}
    assert emitted == ROOM_CODES
    assert set(rows) == ROOM_CODES
    media_node = {801, 802}  # emitted only through a media node (section 10, docs/media.md)
    assert {int(d.value.code) for d in Denial if d.value.code > 0} == ROOM_CODES | media_node
    for code, (name, condition) in rows.items():
        assert name == lookup(code).name, (code, name)
        assert len(condition) > 10, (code, condition)


def test_docs_give_the_log_level_of_refused_requests() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    rule = " ".join(docs.split("- Logging under `roomsignal.server`:", 1)[1].split())
    assert "refuses (the codes of section 3, and section 9's scenario check) at INFO" in rule
    assert "DEBUG" not in rule


def test_notifications_are_numbered_per_participant_and_decode_as_models() -> None:
    d = Driver()
    d.join(1, "a")
    d.join(2, "b")
    d.join(3, "c")
    effects = d.request(1, "sendMessage", text="hi")
    assert [n["seq"] for n in notes(effects, 2)] == [2]
    assert [n["seq"] for n in notes(effects, 3)] == [1]
    for effect in effects:
        assert isinstance(effect, Send)
        message = decode(effect.frame)
        if "method" in json.loads(effect.frame):
            assert isinstance(message, Notification.__args__)
    assert d.rooms.last_seq(d.ids[1]) == 2  # b joined, c joined; nothing for its own message


def test_join_result_seq_is_zero_on_a_fresh_join() -> None:
    d = Driver()
    assert d.join(1, "a")["seq"] == 0
    assert d.join(2, "b")["participants"][0]["name"] == "a"


def test_exchange_life_cycle_follows_the_table() -> None:
    d = Driver(ice_queue_limit=2)
    d.join(1, "pub")
    d.join(2, "sub")
    d.request(1, "publish", audio=True, video=True)
    effects = d.request(2, "subscribe", target=d.ids[1])
    exchange = frames(effects, 2)[0]["result"]["exchangeId"]
    assert notes(effects, 1, "subscribeRequest") == [
        {"exchangeId": exchange, "subscriberId": d.ids[2], "seq": 2}
    ]
    assert d.rooms.exchange_state(exchange) is ExchangeState.AWAITING_OFFER
    assert d.rooms.next_deadline() == T0 + 10.0
    refused = frames(d.request(2, "sdpAnswer", exchangeId=exchange, sdp="a"), 2)[0]
    assert refused["error"]["code"] == 105
    d.request(1, "iceCandidate", exchangeId=exchange, candidate="p1")
    d.request(2, "iceCandidate", exchangeId=exchange, candidate="s1")
    d.request(1, "iceCandidate", exchangeId=exchange, candidate="p2")
    full = frames(d.request(1, "iceCandidate", exchangeId=exchange, candidate="p3"), 1)[0]
    assert full["error"]["code"] == 101
    assert full["error"]["data"]["exchangeId"] == exchange
    effects = d.request(1, "sdpOffer", exchangeId=exchange, sdp="o")
    assert [f.get("method") for f in frames(effects, 2)] == [
        "sdpOffer",
        "iceCandidate",
        "iceCandidate",
    ]
    assert [n["candidate"] for n in notes(effects, 2, "iceCandidate")] == ["p1", "p2"]
    assert [n["candidate"] for n in notes(effects, 1, "iceCandidate")] == ["s1"]
    assert d.rooms.exchange_state(exchange) is ExchangeState.AWAITING_ANSWER
    d.request(2, "sdpAnswer", exchangeId=exchange, sdp="a")
    assert d.rooms.exchange_state(exchange) is ExchangeState.ESTABLISHED
    assert d.rooms.next_deadline() is None
    again = frames(d.request(2, "sdpAnswer", exchangeId=exchange, sdp="a"), 2)[0]
    assert again["error"]["code"] == 105
    d.now += 100
    d.request(1, "sdpOffer", exchangeId=exchange, sdp="renegotiate")
    assert d.rooms.exchange_state(exchange) is ExchangeState.AWAITING_ANSWER
    assert d.rooms.next_deadline() == d.now + 10.0


def test_sdp_timeout_fires_only_when_due_and_reaches_both_sides() -> None:
    d = Driver(sdp_timeout=2.0)
    d.join(1, "pub")
    d.join(2, "sub")
    d.request(1, "publish", audio=True)
    exchange = frames(d.request(2, "subscribe", target=d.ids[1]), 2)[0]["result"]["exchangeId"]
    assert d.rooms.expire(T0 + 1.999) == []
    effects = d.rooms.expire(T0 + 2.0)
    for conn, other in ((1, 2), (2, 1)):
        (error,) = notes(effects, conn, "sessionError")
        assert error["code"] == 303
        assert error["data"] == {
            "name": "MEDIA_ENDPOINT_ERROR_CODE",
            "participantId": d.ids[other],
            "exchangeId": exchange,
        }
    assert d.rooms.exchange_state(exchange) is None
    assert d.rooms.next_deadline() is None
    assert d.rooms.expire(T0 + 50) == []


def test_answered_exchange_does_not_time_out() -> None:
    d = Driver(sdp_timeout=2.0)
    d.join(1, "pub")
    d.join(2, "sub")
    d.request(1, "publish", audio=True)
    exchange = frames(d.request(2, "subscribe", target=d.ids[1]), 2)[0]["result"]["exchangeId"]
    d.request(1, "sdpOffer", exchangeId=exchange, sdp="o")
    d.request(2, "sdpAnswer", exchangeId=exchange, sdp="a")
    assert d.rooms.expire(T0 + 5) == []
    assert d.rooms.exchange_state(exchange) is ExchangeState.ESTABLISHED


def test_unpublish_ends_the_publishers_exchanges() -> None:
    d = Driver()
    d.join(1, "pub")
    d.join(2, "sub")
    d.request(1, "publish", video=True)
    exchange = frames(d.request(2, "subscribe", target=d.ids[1]), 2)[0]["result"]["exchangeId"]
    effects = d.request(1, "unpublish")
    assert [f["method"] for f in frames(effects, 2)] == ["streamUnpublished", "subscriptionEnded"]
    assert notes(effects, 2, "subscriptionEnded")[0]["reason"] == "unpublished"
    assert d.rooms.stats()["exchanges"] == 0
    assert d.rooms.exchange_state(exchange) is None


def test_resume_window_expiry_removes_the_seat_and_then_the_session() -> None:
    d = Driver(resume_window=5.0)
    d.join(1, "a")
    d.join(2, "b")
    assert d.rooms.disconnect(2, T0) == []
    assert d.rooms.is_connected(d.ids[2]) is False
    assert d.rooms.next_deadline() == T0 + 5.0
    effects = d.request(1, "sendMessage", text="while away")
    assert frames(effects, 2) == []
    assert d.rooms.last_seq(d.ids[2]) == 1
    assert d.rooms.expire(T0 + 4.9) == []
    effects = d.rooms.expire(T0 + 5.0)
    assert notes(effects, 1, "participantLeft") == [
        {"participantId": d.ids[2], "reason": "disconnected", "seq": 2}
    ]
    d.rooms.disconnect(1, T0 + 6)
    d.rooms.expire(T0 + 11)
    assert d.rooms.stats() == {
        "sessions": 0,
        "participants": 0,
        "connections": 0,
        "exchanges": 0,
        "closedSessions": 0,
    }


def test_resume_replays_and_a_takeover_closes_the_old_connection() -> None:
    d = Driver()
    d.join(1, "a")
    d.join(2, "b")
    for n in range(3):
        d.request(1, "sendMessage", text=f"m{n}")
    effects = d.request(
        3,
        "join",
        token=mint(SECRET, "room", now=d.now),
        name="b",
        oldParticipantSecret=d.secrets[2],
        lastSeq=1,
    )
    written = frames(effects, 3)
    assert written[0]["result"]["resumed"] is True
    assert written[0]["result"]["seq"] == 3
    assert [f["params"]["seq"] for f in written[1:]] == [2, 3]
    assert Close(2, 4001, "replaced") in effects
    assert frames(effects, 1) == []
    assert frames(d.request(2, "ping"), 2)[0]["result"]["serverTime"] == T0
    assert frames(d.request(2, "getSessionState"), 2)[0]["error"]["code"] == 102


def test_replay_gap_ends_the_seat_at_once() -> None:
    d = Driver(replay_buffer=2)
    d.join(1, "a")
    d.join(2, "b")
    d.rooms.disconnect(2, T0)
    for n in range(3):
        d.request(1, "sendMessage", text=f"m{n}")
    effects = d.request(
        3,
        "join",
        token=mint(SECRET, "room", now=d.now),
        name="b",
        oldParticipantSecret=d.secrets[2],
        lastSeq=0,
    )
    error = frames(effects, 3)[0]["error"]
    assert error["code"] == 106
    assert error["data"]["reason"] == "replayGap"
    assert notes(effects, 1, "participantLeft")[0]["reason"] == "disconnected"
    assert d.join(3, "b")["resumed"] is False


def test_close_session_orders_response_errors_closed_then_close() -> None:
    d = Driver()
    d.join(1, "mod", roles=["moderator"])
    d.join(2, "b")
    d.rooms.disconnect(2, T0)  # a seat in its resume window is a member too
    d.join(3, "c")
    effects = d.request(1, "closeSession")
    assert isinstance(effects[0], Send) and json.loads(effects[0].frame)["result"] == {}
    for conn in (1, 3):
        assert [f.get("method") for f in frames(effects, conn)][-2:] == [
            "sessionError",
            "sessionClosed",
        ]
        assert Close(conn, 1000, "sessionClosed") in effects
        sends = [i for i, e in enumerate(effects) if isinstance(e, Send) and e.conn == conn]
        assert max(sends) < effects.index(Close(conn, 1000, "sessionClosed"))
    assert notes(effects, 1, "sessionClosed")[0]["reason"] == "closedByModerator"
    assert d.rooms.stats()["sessions"] == 0
    assert d.rooms.stats()["closedSessions"] == 1
    assert d.rooms.next_deadline() is None
    refused = d.request(4, "join", token=mint(SECRET, "room", now=d.now), name="x")
    assert frames(refused, 4)[0]["error"]["code"] == 203


def test_closed_session_memory_is_bounded() -> None:
    d = Driver(closed_session_memory=2)
    for n in range(4):
        d.join(n, "mod", session=f"s{n}", roles=["moderator"])
        d.request(n, "closeSession")
    assert d.rooms.stats()["closedSessions"] == 2


def test_session_errors_are_numbered_and_the_buffer_is_bounded() -> None:
    d = Driver(replay_buffer=8)
    d.join(1, "a")
    effects = d.request(1, "simulateScenario", scenario="sessionErrors", code=206, count=100)
    assert effects[-1] == Burst(1, d.ids[1], 206, 100)
    conn, written = d.rooms.session_errors(d.ids[1], 206, 100)
    assert conn == 1
    assert [json.loads(f)["params"]["seq"] for f in written] == list(range(1, 101))
    assert d.rooms.last_seq(d.ids[1]) == 100
    effects = d.request(
        2,
        "join",
        token=mint(SECRET, "room", now=d.now),
        name="a",
        oldParticipantSecret=d.secrets[1],
        lastSeq=92,
    )
    assert [f["params"]["seq"] for f in frames(effects, 2)[1:]] == list(range(93, 101))


def test_connection_drop_aborts_with_no_response_and_keeps_the_seat() -> None:
    d = Driver()
    d.join(1, "a")
    effects = d.request(1, "simulateScenario", scenario="connectionDrop")
    assert effects == [Abort(1)]
    assert d.rooms.is_connected(d.ids[1]) is False


def test_an_unexpected_failure_is_201_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    d = Driver()
    d.join(1, "a")

    def broken(*args: Any) -> None:
        raise KeyError("bug")

    d.rooms._handlers["getSessionState"] = broken
    effects = d.request(1, "getSessionState")
    error = frames(effects, 1)[0]["error"]
    assert error == {
        "code": 201,
        "message": "internal server error",
        "data": {"name": "SESSION_GENERIC_ERROR_CODE", "method": "getSessionState"},
    }
    assert "internal error" in caplog.text
    assert frames(d.request(1, "ping"), 1)[0]["result"]


def test_token_checked_against_the_injected_clock() -> None:
    d = Driver()
    token = mint(SECRET, "room", ttl=10, now=T0)
    d.now = T0 + 11
    effects = d.request(1, "join", token=token, name="a")
    assert frames(effects, 1)[0]["error"]["code"] == 1100
    d.now = T0 + 5
    assert "result" in frames(d.request(1, "join", token=token, name="a"), 1)[0]


def test_expire_runs_in_bounded_turns_and_loses_no_departure() -> None:
    """Seats of one room that expire together end over several calls, each bounded.

    With 2,000 members the one call once sent about 2 million departure
    notices while every other room waited (benchmarks/hostile.py measures it).
    """
    d = Driver(resume_window=5.0)
    d.join(1, "watcher")
    for conn in range(2, 202):
        d.join(conn, f"m{conn}", participant_type="viewer")
    for conn in range(2, 202):
        d.rooms.disconnect(conn, T0)
    left: list[str] = []
    calls = 0
    while (deadline := d.rooms.next_deadline()) is not None and deadline <= T0 + 5.0:
        before = d.rooms.stats()["participants"]
        effects = d.rooms.expire(T0 + 5.0, budget=1000)
        calls += 1
        ended = before - d.rooms.stats()["participants"]
        # every departure but the last one ran within the budget (each notified the room)
        assert ended >= 1 and (ended - 1) * (before - ended + 2) < 1000
        left += [n["participantId"] for n in notes(effects, 1, "participantLeft")]
    assert calls > 10
    assert sorted(left) == sorted(d.ids[c] for c in range(2, 202))  # each once, none lost
    assert d.rooms.stats()["participants"] == 1
    seqs = [n["seq"] for n in notes(d.rooms.expire(T0 + 5.0), 1)]
    assert seqs == []
