"""One JSON object per log line (``serve --log-format json``), through ``logging``.

Each line holds ``time`` (UTC, ISO 8601 with milliseconds), ``level``,
``logger``, ``message``, and ``session``, ``participant``, ``target`` and
``code`` when the record carries them (the server passes them as ``extra=``
where they apply), and ``exception`` with the traceback as one string when
there is one. ``participant`` is always the participant who acted (the
caller of a refused request, the one who joined or left); ``target`` is
another participant a refusal names (``subscribe`` to someone unknown).
Log collectors (Loki, Elastic, CloudWatch) read it without a parsing rule.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["FIELDS", "JsonFormatter", "fields"]

FIELDS = ("session", "participant", "target", "code")
"""The record attributes a line carries when present (pass them with ``extra=``)."""


def fields(
    session: str | None = None,
    participant: str | None = None,
    *,
    target: str | None = None,
    code: int | None = None,
) -> dict[str, Any]:
    """The ``extra=`` of a log call: the fields that are known.

    ``target`` is left out when it is ``participant`` itself (an error that
    names its own caller names no one else).
    """
    extra: dict[str, Any] = {}
    if session is not None:
        extra["session"] = session
    if participant is not None:
        extra["participant"] = participant
    if target is not None and target != participant:
        extra["target"] = target
    if code is not None:
        extra["code"] = code
    return extra


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON; never raises for an odd argument."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)
