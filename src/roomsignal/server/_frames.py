"""Frames the server writes, built from the codec's models; no I/O.

Notifications are encoded once per event and stamped with each recipient's
``seq`` by string splicing, so a broadcast to n members (or a burst of n
``sessionError``) costs one model dump plus n cheap concatenations.
``parse_request`` is the server's view of ``roomsignal.protocol.decode``:
anything that is not a request object is ``-32600``, as PROTOCOL.md section 2
orders the checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

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


def _invalid_request(message: str) -> BadFrame:
    return BadFrame(None, ErrorCode.INVALID_REQUEST, message, {"name": "INVALID_REQUEST"})


def _is_request_object(raw: str | bytes) -> bool:
    """Whether a frame the codec refused still has a request's outer shape."""
    try:
        value = json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        return False
    if not isinstance(value, dict):
        return False
    request_id = value.get("id")
    return (
        value.get("jsonrpc", "2.0") == "2.0"
        and "id" in value
        and not isinstance(request_id, bool)
        and isinstance(request_id, int | str)
        and isinstance(value.get("method"), str)
    )


def parse_request(raw: str | bytes) -> Request | BadFrame:
    """The request in ``raw``, or the JSON-RPC error that answers it.

    Never raises. A frame the codec reads as a notification or a response, or
    whose ``id``/``method`` is missing or of the wrong type, is ``-32600``
    (with ``id: null``), before any ``-32601``/``-32602``.
    """
    try:
        message = decode(raw)
    except ProtocolError as exc:
        code = exc.error.code
        if code in (ErrorCode.METHOD_NOT_FOUND, ErrorCode.INVALID_PARAMS) and not (
            _is_request_object(raw)
        ):
            return _invalid_request("frame is not a JSON-RPC request object")
        return BadFrame(exc.request_id, code, exc.error.message, dict(exc.error.data))
    if isinstance(message, _REQUEST_TYPES):
        return message
    return _invalid_request("only requests may be sent to the server")
