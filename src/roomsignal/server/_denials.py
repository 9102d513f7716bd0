"""The refusal table: every illegal transition of the rooms and the code that answers it.

``Denial`` maps each refused request to its catalog code and default message;
``RoomError`` carries one, with the ids it concerns, and builds the wire
``error.data``. Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from roomsignal.catalog import ErrorCode, lookup
from roomsignal.protocol import (
    SimulateScenarioRequest,
)
from roomsignal.server._frames import error_frame

__all__ = [
    "Denial",
    "RoomError",
    "Rule",
    "SimulatedFailure",
    "check_scenario",
    "error_data",
    "internal_error_frame",
]

# --- the refusal table -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """The code and default message that answer one illegal transition."""

    code: ErrorCode
    message: str


_E = ErrorCode


class Denial(enum.Enum):
    """Every illegal transition of the rooms, with the catalog code that answers it.

    The one table of conditions: each code is given here for each of its
    documented conditions, and nowhere else.
    """

    ALREADY_JOINED = Rule(_E.USER_GENERIC_ERROR_CODE, "this connection has already joined")
    BAD_PARTICIPANT_TYPE = Rule(
        _E.USER_GENERIC_ERROR_CODE, "participantType must be 'full', 'viewer' or 'screen'"
    )
    EMPTY_NAME = Rule(_E.USER_GENERIC_ERROR_CODE, "name must not be empty or blank")
    TARGET_UNAVAILABLE = Rule(
        _E.USER_GENERIC_ERROR_CODE,
        "the target is not available (it is yourself, or its connection is lost)",
    )
    UNKNOWN_EXCHANGE = Rule(
        _E.USER_GENERIC_ERROR_CODE, "no exchange with that id is open for this participant"
    )
    ICE_QUEUE_FULL = Rule(
        _E.USER_GENERIC_ERROR_CODE, "too many ICE candidates held before the offer"
    )
    NOT_JOINED = Rule(_E.USER_NOT_FOUND_ERROR_CODE, "join a session first")
    UNKNOWN_PARTICIPANT = Rule(
        _E.USER_NOT_FOUND_ERROR_CODE, "no participant with that id in the session"
    )
    PEER_LEFT = Rule(_E.USER_CLOSED_ERROR_CODE, "the other party left during the exchange")
    NAME_TAKEN = Rule(
        _E.EXISTING_USER_IN_SESSION_ERROR_CODE, "a participant with that name is in the session"
    )
    PUBLISH_NOTHING = Rule(_E.USER_NOT_STREAMING_ERROR_CODE, "publish needs audio or video")
    NO_OFFER = Rule(_E.USER_NOT_STREAMING_ERROR_CODE, "no offer was sent on that exchange")
    TARGET_NOT_PUBLISHING = Rule(_E.USER_NOT_STREAMING_ERROR_CODE, "the target publishes nothing")
    NOT_PUBLISHING = Rule(_E.USER_NOT_STREAMING_ERROR_CODE, "you are not publishing")
    NOT_SYNCHRONIZER = Rule(
        _E.USER_NOT_AUTHORIZED_ERROR_CODE, "sendSyncData needs the 'synchronizer' role"
    )
    VIEWER_PUBLISH = Rule(_E.USER_NOT_AUTHORIZED_ERROR_CODE, "viewers cannot publish")
    NOT_MODERATOR = Rule(
        _E.USER_NOT_AUTHORIZED_ERROR_CODE, "closeSession needs the 'moderator' role"
    )
    UNKNOWN_SECRET = Rule(
        _E.USER_NOT_AUTHORIZED_ERROR_CODE, "unknown or expired oldParticipantSecret"
    )
    REPLAY_GAP = Rule(
        _E.USER_NOT_AUTHORIZED_ERROR_CODE,
        "lastSeq is older than the replay buffer: the seat was ended, join afresh",
    )
    NO_VIDEO_GRANT = Rule(_E.USER_VIDEO_PERMISSION_DENIED_ERROR_CODE, "the token grants no video")
    NO_AUDIO_GRANT = Rule(_E.USER_AUDIO_PERMISSION_DENIED_ERROR_CODE, "the token grants no audio")
    INTERNAL = Rule(_E.SESSION_GENERIC_ERROR_CODE, "internal server error")
    SESSION_CLOSED = Rule(_E.SESSION_CLOSED_ERROR_CODE, "the session was closed")
    NO_CREATE_GRANT = Rule(
        _E.SESSION_CANNOT_BE_CREATED_ERROR_CODE,
        "the session does not exist and the token has no 'create' grant",
    )
    TOO_MANY_SESSIONS = Rule(
        _E.SESSION_CANNOT_BE_CREATED_ERROR_CODE, "the server is at max_sessions"
    )
    SESSION_FULL_OF_MEMBERS = Rule(
        _E.SESSION_IS_FULL_ERROR_CODE, "the session has its maximum of participants"
    )
    SESSION_FULL = Rule(
        _E.SESSION_IS_FULL_ERROR_CODE, "the session has its maximum of streaming participants"
    )
    ALREADY_SUBSCRIBED = Rule(_E.MEDIA_ENDPOINT_ERROR_CODE, "already subscribed to the target")
    EXCHANGE_IN_PROGRESS = Rule(
        _E.MEDIA_ENDPOINT_ERROR_CODE, "an exchange with the target is in progress"
    )
    SDP_TIMEOUT = Rule(
        _E.MEDIA_ENDPOINT_ERROR_CODE, "the SDP exchange did not complete within sdp_timeout"
    )
    UPSTREAM_TIMEOUT = Rule(
        _E.MEDIA_ENDPOINT_ERROR_CODE, "the upstream offer was not sent within sdp_timeout"
    )
    UPSTREAM_CONNECT_TIMEOUT = Rule(
        _E.MEDIA_ENDPOINT_ERROR_CODE,
        "the upstream did not connect within sdp_timeout of the media node's answer",
    )
    SUBSCRIPTION_CONNECT_TIMEOUT = Rule(
        _E.MEDIA_ENDPOINT_ERROR_CODE,
        "the subscription did not connect within sdp_timeout of the subscriber's answer",
    )
    MEDIA_REFUSED = Rule(_E.MEDIA_ENDPOINT_ERROR_CODE, "the media node refused this SDP")
    MEDIA_NODE_UNREACHABLE = Rule(_E.TRANSPORT_REQUEST_ERROR_CODE, "the media node is unreachable")
    MEDIA_NODE_REQUEST = Rule(
        _E.TRANSPORT_REQUEST_ERROR_CODE, "the request to the media node failed"
    )
    MEDIA_NODE_LOST = Rule(
        _E.TRANSPORT_REQUEST_ERROR_CODE, "the connection to the media node was lost"
    )
    MEDIA_NODE_RESPONSE = Rule(
        _E.TRANSPORT_RESPONSE_ERROR_CODE, "invalid response from the media node"
    )
    TOKEN_EXPIRED = Rule(_E.TOKEN_EXPIRED, "the token has expired")
    TOKEN_INVALID = Rule(_E.TOKEN_DATA_IS_NOT_VALID, "the token is not valid")
    SIMULATION_OFF = Rule(_E.METHOD_NOT_FOUND, "unknown method 'simulateScenario'")
    TOO_LARGE = Rule(_E.INVALID_PARAMS, "a field is over the server's size limit for it")
    BAD_SCENARIO = Rule(_E.INVALID_PARAMS, "invalid params for 'simulateScenario'")


class RoomError(Exception):
    """A refused request: a ``Denial`` and the ids it concerns.

    ``data(method)`` is the wire ``error.data``: ``name`` always, then
    ``method``, ``participantId``, ``exchangeId`` where they apply, and extras
    (``reason``, ``sessionId``, ``errors``).
    """

    def __init__(
        self,
        denial: Denial,
        *,
        message: str | None = None,
        participant_id: str | None = None,
        exchange_id: str | None = None,
        **extra: Any,
    ) -> None:
        rule = denial.value
        super().__init__(message or rule.message)
        self.denial = denial
        self.code = int(rule.code)
        self.message = message or rule.message
        self.participant_id = participant_id
        self.exchange_id = exchange_id
        self.extra = extra
        self.session_id: str | None = None  # for the log: set by a join once its token names it

    def data(self, method: str | None = None) -> dict[str, Any]:
        """The wire ``error.data`` of this refusal."""
        return error_data(self.code, method, self.participant_id, self.exchange_id, self.extra)


def error_data(
    code: int,
    method: str | None,
    participant_id: str | None,
    exchange_id: str | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    data: dict[str, Any] = {"name": lookup(code).name}
    if method is not None:
        data["method"] = method
    if participant_id is not None:
        data["participantId"] = participant_id
    if exchange_id is not None:
        data["exchangeId"] = exchange_id
    data.update(extra)
    return data


def internal_error_frame(request_id: int | str, method: str) -> str:
    """The 201 response to a request whose handling failed unexpectedly (no traceback)."""
    error = RoomError(Denial.INTERNAL)
    return error_frame(request_id, error.code, error.message, error.data(method))


_SCENARIOS = ("internalError", "sessionErrors", "connectionDrop")


def check_scenario(request: SimulateScenarioRequest) -> None:
    """Refuse an unknown scenario, or ``sessionErrors`` without ``code`` (-32602)."""
    params = request.params
    if params.scenario not in _SCENARIOS:
        message = "Input should be " + ", ".join(repr(s) for s in _SCENARIOS)
        errors = [{"loc": ["params", "scenario"], "msg": message}]
    elif params.scenario == "sessionErrors" and params.code is None:
        errors = [{"loc": ["params", "code"], "msg": "Field required"}]
    else:
        return
    raise RoomError(Denial.BAD_SCENARIO, errors=errors)


class SimulatedFailure(RuntimeError):
    """Raised on purpose by ``simulateScenario`` ``internalError``."""
