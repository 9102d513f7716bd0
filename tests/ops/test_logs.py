"""``--log-format json``: one JSON object per line, with session, participant and code."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from roomsignal import Session, SessionErrorException
from roomsignal.server import SignalingServer
from roomsignal.server._logs import JsonFormatter
from roomsignal.tokens import mint

from .conftest import SECRET


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("roomsignal")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)


async def test_refusals_and_joins_carry_their_fields(json_lines: io.StringIO) -> None:
    async with SignalingServer(secret=SECRET) as server:
        session = Session(server.url, token=mint(SECRET, "logs"), name="a")
        async with session:
            with pytest.raises(SessionErrorException):
                await session.publish(audio=False, video=False)
            participant = session.participant_id
    records = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert records, "nothing logged"
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
        assert record["time"].endswith("+00:00")
    joined = next(r for r in records if "joined session" in r["message"])
    assert joined["session"] == "logs" and joined["participant"] == participant
    refused = next(r for r in records if "refused with 105" in r["message"])
    assert refused["code"] == 105 and refused["participant"] == participant
    assert refused["session"] == "logs" and "target" not in refused
    assert refused["level"] == "INFO" and refused["logger"] == "roomsignal.server"


def _one(records: list[dict[str, Any]], text: str) -> dict[str, Any]:
    found = [r for r in records if text in r["message"]]
    assert len(found) == 1, (text, [r["message"] for r in records])
    return found[0]


async def test_participant_is_the_caller_and_target_whom_it_names(
    json_lines: io.StringIO,
) -> None:
    """``participant`` is who acted; the participant an error is about is ``target``."""
    async with SignalingServer(secret=SECRET) as server:
        alice = Session(server.url, token=mint(SECRET, "room"), name="alice")
        bob = Session(server.url, token=mint(SECRET, "room"), name="bob")
        twin = Session(server.url, token=mint(SECRET, "room"), name="alice", reconnect=None)
        async with alice, bob:
            with pytest.raises(SessionErrorException) as unknown:
                await bob.subscribe("p_nobody")
            assert unknown.value.code == 102
            with pytest.raises(SessionErrorException) as silent:
                await bob.subscribe(alice.participant_id)
            with pytest.raises(SessionErrorException) as taken:
                await twin.connect()
            assert taken.value.code == 104
            a, b = alice.participant_id, bob.participant_id
            await bob.close()
    records = [json.loads(line) for line in json_lines.getvalue().splitlines()]

    created = _one(records, "session room created")
    assert created["session"] == "room" and "participant" not in created
    for who in (a, b):
        joined = _one(records, f"participant {who} (")
        assert joined["session"] == "room" and joined["participant"] == who

    nobody = _one(records, "subscribe refused with 102")
    assert nobody["participant"] == b and nobody["target"] == "p_nobody"
    assert nobody["session"] == "room" and nobody["code"] == 102
    not_publishing = _one(records, f"subscribe refused with {silent.value.code}")
    assert not_publishing["participant"] == b and not_publishing["target"] == a
    assert not_publishing["session"] == "room"

    name_taken = _one(records, "join refused with 104")
    assert name_taken["session"] == "room" and name_taken["code"] == 104
    assert "participant" not in name_taken and "target" not in name_taken

    for who in (b, a):
        left = _one(records, f"participant {who} left session room")
        assert left["session"] == "room" and left["participant"] == who
    removed = _one(records, "session room removed")
    assert removed["session"] == "room" and "participant" not in removed


def test_a_traceback_stays_inside_one_line() -> None:
    record = logging.LogRecord(
        "roomsignal.server", logging.ERROR, __file__, 1, "boom %s", ("x",), None
    )
    try:
        raise ValueError("inner")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "boom x"
    assert "ValueError: inner" in parsed["exception"]
    assert "session" not in parsed
