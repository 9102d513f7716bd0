"""One JSON object per log line (``serve --log-format json``), through ``logging``.

Each line holds ``time`` (UTC, ISO 8601 with milliseconds), ``level``,
``logger``, ``message``, and ``session``, ``participant`` and ``code`` when
the record carries them (the server passes them as ``extra=`` where they
apply: joins, resumes, refusals, drops), and ``exception`` with the
traceback as one string when there is one. Log collectors (Loki, Elastic,
CloudWatch) read it without a parsing rule.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

__all__ = ["FIELDS", "JsonFormatter"]

FIELDS = ("session", "participant", "code")
"""The record attributes a line carries when present (pass them with ``extra=``)."""


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
