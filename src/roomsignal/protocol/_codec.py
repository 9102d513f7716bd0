"""One decode and one encode for every roomsignal frame; no I/O, no asyncio.

``decode`` parses a frame straight from JSON with a single ``TypeAdapter``:
a cheap callable picks the message kind (request, notification, response,
error response) from the keys present, then a string discriminator on
``method`` picks the model, resolved inside pydantic-core. A frame that is
not a valid message raises ``ProtocolError`` with the JSON-RPC code that
docs/protocol.md section 2 assigns, so the server can answer it and the client
can report it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

from pydantic import Discriminator, Tag, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails
from pydantic_core import from_json as _from_json

from roomsignal.catalog import ErrorCode
from roomsignal.errors import ProtocolError, make_error
from roomsignal.protocol import _speedups
from roomsignal.protocol._models import (
    CloseSessionRequest,
    ErrorObject,
    ErrorResponse,
    GetSessionStateRequest,
    IceCandidateNotification,
    IceCandidateRequest,
    JoinRequest,
    LeaveRequest,
    MessageReceivedNotification,
    Model,
    ParticipantJoinedNotification,
    ParticipantLeftNotification,
    PingRequest,
    PublishRequest,
    Response,
    SdpAnswerNotification,
    SdpAnswerRequest,
    SdpOfferNotification,
    SdpOfferRequest,
    SendMessageRequest,
    SendSyncDataRequest,
    SessionClosedNotification,
    SessionErrorNotification,
    SimulateScenarioRequest,
    StreamPublishedNotification,
    StreamUnpublishedNotification,
    SubscribeRequest,
    SubscribeRequestNotification,
    SubscriptionEndedNotification,
    SyncDataNotification,
    UnpublishRequest,
    UnsubscribeRequest,
)

__all__ = [
    "METHODS",
    "NOTIFICATION_METHODS",
    "Message",
    "Notification",
    "Request",
    "decode",
    "encode",
    "error_response",
]

Request = (
    JoinRequest
    | LeaveRequest
    | PublishRequest
    | UnpublishRequest
    | SubscribeRequest
    | UnsubscribeRequest
    | SdpOfferRequest
    | SdpAnswerRequest
    | IceCandidateRequest
    | SendMessageRequest
    | SendSyncDataRequest
    | GetSessionStateRequest
    | CloseSessionRequest
    | PingRequest
    | SimulateScenarioRequest
)
Notification = (
    ParticipantJoinedNotification
    | ParticipantLeftNotification
    | StreamPublishedNotification
    | StreamUnpublishedNotification
    | SubscribeRequestNotification
    | SdpOfferNotification
    | SdpAnswerNotification
    | IceCandidateNotification
    | SubscriptionEndedNotification
    | MessageReceivedNotification
    | SyncDataNotification
    | SessionErrorNotification
    | SessionClosedNotification
)
Message = Request | Notification | Response | ErrorResponse

_REQUEST_CLASSES: tuple[type[Model], ...] = Request.__args__
_NOTIFICATION_CLASSES: tuple[type[Model], ...] = Notification.__args__
METHODS: Final[frozenset[str]] = frozenset(
    cls.model_fields["method"].default for cls in _REQUEST_CLASSES
)
NOTIFICATION_METHODS: Final[frozenset[str]] = frozenset(
    cls.model_fields["method"].default for cls in _NOTIFICATION_CLASSES
)

_KIND_OF_CLASS: dict[type[Any], str] = {
    **dict.fromkeys(_REQUEST_CLASSES, "request"),
    **dict.fromkeys(_NOTIFICATION_CLASSES, "notification"),
    Response: "response",
    ErrorResponse: "error",
}


def _kind(value: Any) -> str | None:
    """Which kind of JSON-RPC message a parsed frame is, from its keys alone."""
    if isinstance(value, dict):
        if "method" in value:
            return "request" if "id" in value else "notification"
        if "error" in value:
            return "error"
        if "result" in value:
            return "response"
        return None
    return _KIND_OF_CLASS.get(type(value))


_ADAPTER: Final[TypeAdapter[Message]] = TypeAdapter(
    Annotated[
        Annotated[Annotated[Request, Discriminator("method")], Tag("request")]
        | Annotated[Annotated[Notification, Discriminator("method")], Tag("notification")]
        | Annotated[Response, Tag("response")]
        | Annotated[ErrorResponse, Tag("error")],
        Discriminator(_kind),
    ]
)


# Fast paths: a frame with no literal "id" key can only be a notification, and one
# with both "id" and "method" keys can only be a request (a quote inside a JSON
# string is always escaped, so these substrings cannot come from string values
# that merely contain them). The guess is only a shortcut: when it fails to
# validate, the general adapter decides, and reports errors as usual.
_NOTIFICATION_ADAPTER: Final[TypeAdapter[Notification]] = TypeAdapter(
    Annotated[Notification, Discriminator("method")]
)
_REQUEST_ADAPTER: Final[TypeAdapter[Request]] = TypeAdapter(
    Annotated[Request, Discriminator("method")]
)


def _guess(frame: str | bytes) -> Message | None:
    if isinstance(frame, str):
        has_id, has_method = '"id"' in frame, '"method"' in frame
    else:
        # find, not ``in``: on bytes, ``in`` first tries its needle as an int (and raises).
        has_id, has_method = frame.find(b'"id"') >= 0, frame.find(b'"method"') >= 0
    if not has_method:
        return None
    message: Message
    try:
        if has_id:
            message = _REQUEST_ADAPTER.validate_json(frame)
        else:
            message = _NOTIFICATION_ADAPTER.validate_json(frame)
    except ValueError:  # ValidationError, or anything odd: the general path decides
        return None
    extra = message.__pydantic_extra__
    if extra and "id" in extra:  # an escaped "id" key: not what the substring said
        return None
    return message


def decode_session_error(frame: bytes | str) -> dict[str, Any] | None:
    """The params of a ``sessionError`` notification as a dict, or None for any other frame.

    A shortcut for the client's hottest path: None also when the frame is not
    quite right, so that ``decode`` then says what is wrong. The frame is
    parsed by pydantic-core's JSON parser and its few fields are checked by
    type here: every JSON value these checks accept, ``SessionErrorNotification``
    accepts as the same values (its lax mode takes more, which then goes the
    long way), and a property test holds the two to that.
    """
    if isinstance(frame, bytes):
        # The reference server's own key order first: much cheaper than a search (and
        # than ``in``, which first tries the needle as an int and raises inside).
        if not frame.startswith(_SESSION_ERROR_START) and frame.find(b'"sessionError"') < 0:
            return None
    elif '"sessionError"' not in frame:
        return None
    try:
        value = _from_json(frame)
    except ValueError:
        return None
    if type(value) is not dict or "id" in value:
        return None
    try:  # subscripts, not .get(): a missing key is the rare case here
        if value["method"] != "sessionError" or value["jsonrpc"] != "2.0":
            return None
        params = value["params"]
        if (
            type(params) is not dict
            or type(params["seq"]) is not int
            or type(params["code"]) is not int
            or type(params["message"]) is not str
        ):
            return None
    except KeyError:
        return None
    data = params.get("data", _EMPTY)
    if type(data) is not dict:
        return None
    return params


def session_error_parts(frame: bytes | str) -> tuple[int, int, str, dict[str, Any] | None] | None:
    """A ``sessionError``'s ``(seq, code, message, data)``, or None (then ``decode`` decides).

    What the client core reads on its hottest path: with the ``speedups``
    extra (msgspec), the frame's shape and types are checked in C, against
    a typed struct; without it, by ``decode_session_error``. Either may
    decline a frame; neither accepts one ``decode`` refuses, and both give
    its values (property-tested, each way). An absent ``data`` is None (the
    checks) or ``{}`` (msgspec); ``_server_error`` takes both alike.
    """
    if _FAST_NOTE is None:
        params = decode_session_error(frame)
        if params is None:
            return None
        return params["seq"], params["code"], params["message"], params.get("data")
    if isinstance(frame, bytes):
        if not frame.startswith(_SESSION_ERROR_START) and frame.find(b'"sessionError"') < 0:
            return None
    elif '"sessionError"' not in frame:
        return None
    try:
        params_ = _FAST_NOTE(frame).params
    except _FAST_ERRORS:
        return None
    return params_.seq, params_.code, params_.message, params_.data


_FAST_NOTE: Any = _speedups.read_session_error
_FAST_ERRORS: Final = _speedups.ERRORS
SPEEDUPS: Final = _FAST_NOTE is not None
"""Whether the ``speedups`` extra (msgspec) is in use (``ROOMSIGNAL_NO_SPEEDUPS=1`` turns it off)."""

_EMPTY: Final[dict[str, Any]] = {}
_SESSION_ERROR_START: Final = b'{"jsonrpc":"2.0","method":"sessionError"'
_RESPONSE_KEYS: Final = frozenset({"jsonrpc", "id", "result"})


def decode_response(frame: bytes | str) -> tuple[int | str, dict[str, Any]] | None:
    """A successful response's ``(id, result)``, or None (then ``decode`` decides).

    The client's shortcut for answers (a ``ping``'s, say): parsed by
    pydantic-core's JSON parser and checked by type as ``Response`` would,
    without building it. Only the plain shape is taken: exactly ``jsonrpc``,
    ``id`` (an int or a str) and ``result`` (an object); ``decode`` reads
    every frame taken here as a ``Response`` of the same id and result, and a
    property test holds the two to that.
    """
    try:
        value = _from_json(frame)
    except ValueError:
        return None
    if (
        type(value) is not dict
        or len(value) != 3
        or value.keys() != _RESPONSE_KEYS
        or value["jsonrpc"] != "2.0"
        or type(value["result"]) is not dict
    ):
        return None
    request_id = value["id"]
    if type(request_id) is not int and type(request_id) is not str:
        return None
    return request_id, value["result"]


def decode(frame: str | bytes) -> Message:
    """Parse one text frame into a typed message.

    Raises ``ProtocolError`` (never anything else) when the frame is not a
    valid message; its ``error.code`` is ``-32700`` (not JSON), ``-32600``
    (not a message object, or a batch), ``-32601`` (unknown method) or
    ``-32602`` (params of the wrong shape or type, listed in
    ``error.data["errors"]``), and ``request_id`` is the frame's ``id`` when
    one could be read. Safe to call from any thread.
    """
    message = _guess(frame)
    if message is not None:
        return message
    try:
        return _ADAPTER.validate_json(frame)
    except ValidationError as exc:
        raise _protocol_error(frame, exc.errors(include_url=False, include_input=False)) from None
    except (RecursionError, ValueError, TypeError) as exc:  # deeply nested or odd input
        raise _make(ErrorCode.PARSE_ERROR, f"frame cannot be parsed: {exc}", None, None) from None


def encode(message: Model) -> str:
    """Serialize a message (or any wire model) to one JSON text frame."""
    return message.model_dump_json()


def error_response(
    request_id: int | str | None, code: int, message: str, data: dict[str, Any]
) -> ErrorResponse:
    """An error response answering ``request_id``."""
    return ErrorResponse(id=request_id, error=ErrorObject(code=code, message=message, data=data))


def _make(
    code: ErrorCode,
    message: str,
    request_id: int | str | None,
    method: str | None,
    errors: list[dict[str, Any]] | None = None,
) -> ProtocolError:
    data: dict[str, Any] = {"name": code.name}
    if method is not None:
        data["method"] = method
    if errors is not None:
        data["errors"] = errors
    return ProtocolError(make_error(code, message, data, source="client"), request_id)


def _peek(frame: str | bytes) -> tuple[Any, int | str | None, str | None]:
    """The parsed value, its id and method, read leniently (error path only)."""
    try:
        value = json.loads(frame)
    except (ValueError, TypeError, RecursionError):
        return None, None, None
    if not isinstance(value, dict):
        return value, None, None
    request_id = value.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        request_id = None
    method = value.get("method")
    return value, request_id, method if isinstance(method, str) else None


def _protocol_error(frame: str | bytes, errors: list[ErrorDetails]) -> ProtocolError:
    value, request_id, method = _peek(frame)
    first = errors[0] if errors else None
    if first is None or first["type"] in ("json_invalid", "json_type", "string_unicode"):
        return _make(ErrorCode.PARSE_ERROR, "frame is not valid JSON", None, None)
    if isinstance(value, list):
        return _make(ErrorCode.INVALID_REQUEST, "batches are not supported", None, None)
    if not isinstance(value, dict):
        return _make(
            ErrorCode.INVALID_REQUEST, "frame is not a JSON-RPC message object", None, None
        )
    kind = _kind(value)
    if first["type"] == "union_tag_invalid" and len(first["loc"]) == 1:
        if kind == "request":
            return _make(
                ErrorCode.METHOD_NOT_FOUND, f"unknown method {method!r}", request_id, method
            )
        return _make(
            ErrorCode.METHOD_NOT_FOUND, f"unknown notification {method!r}", request_id, method
        )
    if kind is None or first["type"] == "union_tag_not_found":
        return _make(
            ErrorCode.INVALID_REQUEST, "frame is not a JSON-RPC message object", request_id, method
        )
    # loc is (kind, [method,] field, ...): drop the tags pydantic adds.
    skip = 2 if kind in ("request", "notification") else 1
    details = [{"loc": list(err["loc"][skip:]), "msg": err["msg"]} for err in errors]
    if kind in ("request", "notification") and all(d["loc"][:1] == ["params"] for d in details):
        return _make(
            ErrorCode.INVALID_PARAMS, f"invalid params for {method!r}", request_id, method, details
        )
    return _make(
        ErrorCode.INVALID_REQUEST,
        "frame is not a valid JSON-RPC message",
        request_id,
        method,
        details,
    )
