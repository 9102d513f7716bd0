"""How ``join`` shows events and errors: one line of text, or one JSON object.

One format for every event: ``EVENT  key=value ...`` with the wire's camelCase
keys, a participant shown by name wherever the name is known (``from=alice``,
``participant=alice``), the notification's ``#seq`` last. Errors are the
``session_error`` event, shown as ``code NAME [category] message``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from roomsignal.errors import SessionError

__all__ = ["EVENTS", "Names", "clock", "error_line", "event_json", "event_line"]

Names = Mapping[str, str]
"""Participant id -> name, for the ids an event carries."""

# Keys whose value is a participant id (or a list of them), and the key each
# becomes in text, where the id is replaced by the name when known.
_ID_KEYS = {"participantId": "participant", "from": "from", "target": "target", "to": "to"}

# Every event a ``Session`` emits, by the suffix of its ``on_<event>`` method.
EVENTS = (
    "connected",
    "session_error",
    "participant_joined",
    "participant_left",
    "stream_published",
    "stream_unpublished",
    "subscribe_request",
    "subscription_ended",
    "sdp_offer",
    "sdp_answer",
    "ice_candidate",
    "message",
    "sync_data",
    "reconnecting",
    "reconnected",
    "disconnected",
    "session_closed",
)


def clock(at: float | None = None) -> str:
    """Local wall time as ``HH:MM:SS.mmm``."""
    at = time.time() if at is None else at
    return time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at * 1000) % 1000:03d}"


def error_line(error: SessionError) -> str:
    """``code NAME [category] message`` plus the failed method and client-side and recovering marks."""
    line = f"{error.code} {error.name} [{error.category}] {error.message}"
    extras = []
    if error.method:
        extras.append(f"method={error.method}")
    if error.source == "client":
        extras.append("found by the client")
    if error.recovering:
        extras.append("recovering: on the way back, not a refusal")
    if extras:
        line += f" ({', '.join(extras)})"
    return line


def _rounded(value: Any) -> Any:
    """Floats to the millisecond (times, delays, positions), inside lists and dicts too."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def _payload(payload: Any) -> dict[str, Any]:
    if isinstance(payload, BaseModel):
        data: dict[str, Any] = payload.model_dump(mode="json", by_alias=True, exclude_none=True)
        # one key style on every line: the wire's camelCase, for the client's own
        # events and errors too (their fields are snake_case in Python)
        return {to_camel(key): _rounded(value) for key, value in data.items()}
    if isinstance(payload, dict):
        return {key: _rounded(value) for key, value in payload.items()}
    return {"value": repr(payload)}


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _name(value: Any, names: Names) -> Any:
    if isinstance(value, list):
        return [_name(item, names) for item in value]
    return names.get(value, value) if isinstance(value, str) else value


def event_line(event: str, payload: Any, names: Names | None = None) -> str:
    """One human-readable line for an event (no timestamp); ids shown as ``names`` say."""
    names = names or {}
    if isinstance(payload, SessionError):
        return f"{event:<19} {error_line(payload)}"
    data = _payload(payload)
    seq = data.pop("seq", None)
    parts = []
    participant = data.pop("participant", None)
    if isinstance(participant, dict):  # participant_joined: the member, flattened
        parts.append(f"participant={participant.get('name')}")
        parts.append(f"type={participant.get('participantType')}")
        data.pop("participantId", None)
    participants = data.pop("participants", None)
    for key, value in data.items():
        if key in _ID_KEYS:
            key, value = _ID_KEYS[key], _name(value, names)
        parts.append(f"{key}={_short(value)}")
    if isinstance(participants, list):
        others = ",".join(str(p.get("name")) for p in participants if isinstance(p, dict))
        parts.append(f"others=[{others}]")
    if seq is not None:
        parts.append(f"#{seq}")
    return f"{event:<19} {' '.join(parts)}".rstrip()


def event_json(
    event: str, payload: Any, at: float | None = None, names: Names | None = None
) -> str:
    """One JSON object for an event: ``{"event": ..., "time": ..., <payload fields>}``.

    Each id that ``names`` knows gets its name beside it: ``fromName``,
    ``participantName``, ``targetName``, ``toNames``.
    """
    data = _payload(payload)
    for key in _ID_KEYS:
        value = data.get(key)
        if names and value is not None:
            named = _name(value, names)
            if named != value:
                data["toNames" if key == "to" else f"{_ID_KEYS[key]}Name"] = named
    stamp = round(time.time() if at is None else at, 3)
    return json.dumps({"event": event, "time": stamp, **data})
