"""``--log-format json``: one JSON object per line, with session, participant and code."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

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
    assert refused["level"] == "INFO" and refused["logger"] == "roomsignal.server"


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
