"""Frames the server writes, built from the codec's models; no I/O.

Notifications are encoded once per event and stamped with each recipient's
``seq`` by string splicing, so a broadcast to n members (or a burst of n
``sessionError``) costs one model dump plus n cheap concatenations.
``parse_request`` is the server's view of ``roomsignal.protocol.decode``:
anything that is not a request object is ``-32600``, and ``simulateScenario``
on a server without simulation is ``-32601`` before its params are looked at,
as docs/protocol.md section 2 orders the checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json

from roomsignal.catalog import ErrorCode
from roomsignal.errors import ProtocolError
from roomsignal.protocol import (
    CloseSessionRequest,
    GetSessionStateRequest,
    IceCandidateRequest,
    JoinRequest,
    LeaveRequest,
    Model,
    Notification,
    PingRequest,
    PingResult,
    PublishRequest,
    Request,
    SdpAnswerRequest,
    SdpOfferRequest,
    SendMessageRequest,
    SendSyncDataRequest,
    SimulateScenarioRequest,
    SubscribeRequest,
    UnpublishRequest,
    UnsubscribeRequest,
    decode,
    encode,
    error_response,
)

__all__ = [
    "BadFrame",
    "error_frame",
    "parse_request",
    "ping_answer",
    "response_frame",
    "stamp",
    "template",
]

_REQUEST_TYPES = (
    JoinRequest,
    LeaveRequest,
    PublishRequest,
    UnpublishRequest,
    SubscribeRequest,
    UnsubscribeRequest,
    SdpOfferRequest,
    SdpAnswerRequest,
    IceCandidateRequest,
    SendMessageRequest,
    SendSyncDataRequest,
    GetSessionStateRequest,
    CloseSessionRequest,
    PingRequest,
    SimulateScenarioRequest,
)
_NO_SEQ: Any = {"params": {"seq"}}


def template(notification: Notification) -> str:
    """The notification's JSON without ``seq`` and without its two closing braces.

    Build the notification with ``seq=0``; ``stamp`` finishes the frame.
    Every notification's params carry at least one field besides ``seq``.
    """
    raw = notification.model_dump_json(exclude=_NO_SEQ)
    return raw[:-2]


def stamp(base: str, seq: int) -> str:
    """A finished notification frame: ``base`` from ``template`` with ``seq`` added."""
    return f'{base},"seq":{seq}}}}}'


def response_frame(request_id: int | str, result: Model) -> str:
    """A success response answering ``request_id`` with ``result``."""
    return f'{{"jsonrpc":"2.0","id":{json.dumps(request_id)},"result":{result.model_dump_json()}}}'


def ping_answer(raw: str, now: float) -> str | None:
    """The answer to a plain ``ping`` frame at ``now``, or None for any other frame.

    The server's hot path of round trips: parsed by pydantic-core's JSON
    parser and checked by type, without building a request or a result.
    Only the plain shape is taken (exactly ``jsonrpc``, an int or str ``id``,
    ``method``, and at most an empty ``params``); anything else is
    ``parse_request``'s to judge. The frame is the one ``response_frame``
    writes for a ``PingResult`` (a test holds the two to that).
    """
    if '"ping"' not in raw:
        return None
    try:
        value = from_json(raw)
    except ValueError:
        return None
    if type(value) is not dict or value.get("method") != "ping" or value.get("jsonrpc") != "2.0":
        return None
    size = len(value)
    if size == 4:
        params = value.get("params", _MISSING)
        if type(params) is not dict or params:
            return None
    elif size != 3:
        return None
    request_id = value.get("id", _MISSING)
    if type(request_id) is int:
        id_text = str(request_id)
    elif type(request_id) is str:
        id_text = json.dumps(request_id)
    else:
        return None
    if 1e-3 <= now < 1e15:  # where repr() writes a float as pydantic does
        result = f'{{"serverTime":{now!r}}}'
    else:
        result = PingResult(server_time=now).model_dump_json()
    return f'{{"jsonrpc":"2.0","id":{id_text},"result":{result}}}'


_MISSING: Any = object()


def error_frame(request_id: int | str | None, code: int, message: str, data: dict[str, Any]) -> str:
    """An error response answering ``request_id`` (None when it could not be read)."""
    return encode(error_response(request_id, code, message, data))


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame that is not a valid request, with the JSON-RPC error that answers it."""

    request_id: int | str | None
    code: int
    message: str
    data: dict[str, Any]

    def frame(self) -> str:
        """The error response to write."""
        return error_frame(self.request_id, self.code, self.message, self.data)


def _invalid_request(message: str, request_id: int | str | None, method: str | None) -> BadFrame:
    data: dict[str, Any] = {"name": "INVALID_REQUEST"}
    if method is not None:
        data["method"] = method
    return BadFrame(request_id, ErrorCode.INVALID_REQUEST, message, data)


def _method_not_found(request_id: int | str, method: str) -> BadFrame:
    return BadFrame(
        request_id,
        ErrorCode.METHOD_NOT_FOUND,
        f"unknown method {method!r}",
        {"name": "METHOD_NOT_FOUND", "method": method},
    )


def _request_shape(raw: str | bytes) -> tuple[bool, int | str | None, str | None]:
    """Whether a frame the codec refused still has a request's outer shape, its id and method.

    The id is the frame's when it is an object with an integer or string
    ``id`` and a string ``method``; None otherwise (no id can be read). The
    method is the frame's whenever it is an object with a string ``method``.
    """
    try:
        value = json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        return False, None, None
    if not isinstance(value, dict):
        return False, None, None
    method = value.get("method")
    if not isinstance(method, str):
        return False, None, None
    request_id = value.get("id")
    if "id" not in value or isinstance(request_id, bool) or not isinstance(request_id, int | str):
        return False, None, method
    return value.get("jsonrpc", "2.0") == "2.0", request_id, method


def parse_request(raw: str | bytes, *, allow_simulation: bool) -> Request | BadFrame:
    """The request in ``raw``, or the JSON-RPC error that answers it.

    Never raises. A frame the codec reads as a notification or a response, or
    whose ``id``/``method`` is missing or of the wrong type, is ``-32600``,
    before any ``-32601``/``-32602``. A ``-32600`` carries the frame's ``id``
    when the frame is an object with an integer or string ``id`` and a string
    ``method`` (a wrong ``jsonrpc``, say), ``id: null`` otherwise.
    Without ``allow_simulation``, ``simulateScenario`` is an unknown method
    (``-32601``) whatever its params: the method is checked before them.
    """
    try:
        message = decode(raw)
    except ProtocolError as exc:
        code = exc.error.code
        if code == ErrorCode.PARSE_ERROR:
            return BadFrame(None, code, exc.error.message, dict(exc.error.data))
        shaped, request_id, method = _request_shape(raw)
        if code == ErrorCode.INVALID_REQUEST:
            return BadFrame(request_id, code, exc.error.message, dict(exc.error.data))
        if not shaped:
            return _invalid_request("frame is not a JSON-RPC request object", request_id, method)
        assert request_id is not None
        if exc.error.data.get("method") == "simulateScenario" and not allow_simulation:
            return _method_not_found(request_id, "simulateScenario")
        return BadFrame(request_id, code, exc.error.message, dict(exc.error.data))
    if isinstance(message, SimulateScenarioRequest) and not allow_simulation:
        return _method_not_found(message.id, message.method)
    if isinstance(message, _REQUEST_TYPES):
        return message
    method = getattr(message, "method", None)
    return _invalid_request("only requests may be sent to the server", None, method)
