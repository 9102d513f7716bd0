"""Pydantic models of every frame, param, result and notification of docs/protocol.md.

Wire names are camelCase (aliases); Python names are snake_case. Unknown
fields are kept (``extra="allow"``) for forward compatibility. Request params
are strict about JSON types (a string where a bool belongs is ``-32602``);
values the room judges (``participantType``, ids, token content) stay plain.
Frames from the server are parsed leniently, as a client should.

Over 600 lines on purpose: one model per frame of the protocol, in the order
of docs/protocol.md sections 5 and 6, so that a field is found by its wire
name in one place; splitting requests from notifications would cut the
shared params (``Participant``, ``Streams``) away from both.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel

__all__ = [
    "CloseSessionParams",
    "CloseSessionRequest",
    "EmptyParams",
    "EmptyResult",
    "ErrorObject",
    "ErrorResponse",
    "GetSessionStateRequest",
    "IceCandidateNotification",
    "IceCandidateNotificationParams",
    "IceCandidateParams",
    "IceCandidateRequest",
    "JoinParams",
    "JoinRequest",
    "JoinResult",
    "LeaveRequest",
    "MessageReceivedNotification",
    "MessageReceivedParams",
    "Model",
    "Participant",
    "ParticipantJoinedNotification",
    "ParticipantJoinedParams",
    "ParticipantLeftNotification",
    "ParticipantLeftParams",
    "PingRequest",
    "PingResult",
    "PublishParams",
    "PublishRequest",
    "PublishResult",
    "Response",
    "SdpAnswerNotification",
    "SdpAnswerRequest",
    "SdpNotificationParams",
    "SdpOfferNotification",
    "SdpOfferRequest",
    "SdpParams",
    "SendMessageParams",
    "SendMessageRequest",
    "SendSyncDataParams",
    "SendSyncDataRequest",
    "SessionClosedNotification",
    "SessionClosedParams",
    "SessionErrorNotification",
    "SessionErrorParams",
    "SessionStateResult",
    "SimulateScenarioParams",
    "SimulateScenarioRequest",
    "StreamPublishedNotification",
    "StreamPublishedParams",
    "StreamUnpublishedNotification",
    "StreamUnpublishedParams",
    "Streams",
    "SubscribeRequest",
    "SubscribeRequestNotification",
    "SubscribeRequestParams",
    "SubscribeResult",
    "SubscriptionEndedNotification",
    "SubscriptionEndedParams",
    "SyncDataNotification",
    "SyncDataParams",
    "SyncState",
    "TargetParams",
    "UnpublishRequest",
    "UnsubscribeRequest",
]


def _is_none(value: object) -> bool:
    return value is None


def _optional() -> Any:
    """An optional field (``name?`` in docs/protocol.md): None, and absent from the wire then."""
    return Field(default=None, exclude_if=_is_none)


RequestId = int | str
# A response's id, read strictly: only an int or a str (JSON ``true`` is no id,
# though in Python ``True == 1``; nor is ``1.0``). A response with any other id
# fails to decode, and the client reports it as a protocol error.
ResponseId = Annotated[int, Strict()] | Annotated[str, Strict()]


class Model(BaseModel):
    """Base of every wire model: camelCase aliases, extra fields kept, frozen."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="allow",
        frozen=True,
    )


class StrictModel(Model):
    """Request params: JSON types are checked strictly (no "1" for 1).

    ``NaN`` and infinities (``1e999``) are not JSON numbers: refused, so a
    server never relays a float it cannot encode back.
    """

    model_config = ConfigDict(strict=True, allow_inf_nan=False)


# --- shared shapes --------------------------------------------------------


class Streams(Model):
    """What a participant publishes."""

    audio: bool
    video: bool


class Participant(Model):
    """A member of a session, as others see it."""

    participant_id: str
    name: str
    participant_type: str
    roles: list[str] = Field(default_factory=list)
    streams: Streams | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class SyncState(Model):
    """The session's last playback position (the last ``syncData`` sent)."""

    from_: str = Field(alias="from")
    position: float
    playing: bool
    rate: float = 1.0
    media_id: str | None = _optional()
    server_time: float


# --- request params -------------------------------------------------------


class EmptyParams(StrictModel):
    """Params of a method that takes none."""


class JoinParams(StrictModel):
    """``join``: enter a session, or resume a seat with ``old_participant_secret``."""

    token: str
    name: str
    participant_type: str = "full"
    metadata: dict[str, Any] | None = _optional()
    old_participant_secret: str | None = _optional()
    last_seq: int | None = _optional()


class PublishParams(StrictModel):
    """``publish``: start (or update) sending audio and/or video."""

    audio: bool = False
    video: bool = False


class TargetParams(StrictModel):
    """``subscribe``/``unsubscribe``: the publisher's participant id."""

    target: str


class SdpParams(StrictModel):
    """``sdpOffer``/``sdpAnswer``: an SDP on an exchange."""

    exchange_id: str
    sdp: str


class IceCandidateParams(StrictModel):
    """``iceCandidate``: one trickled candidate on an exchange."""

    exchange_id: str
    candidate: str
    sdp_mid: str | None = _optional()
    sdp_m_line_index: int | None = _optional()


class SendMessageParams(StrictModel):
    """``sendMessage``: chat text to everyone else, or to the ids in ``to``."""

    text: str
    to: list[str] | None = _optional()


class SendSyncDataParams(StrictModel):
    """``sendSyncData``: the playback position, for synchronizers."""

    position: float
    playing: bool
    rate: float = 1.0
    media_id: str | None = _optional()


class CloseSessionParams(StrictModel):
    """``closeSession``: end the session for everyone (moderators only)."""

    reason: str | None = _optional()


class SimulateScenarioParams(StrictModel):
    """``simulateScenario``: make the server misbehave on purpose (section 9)."""

    scenario: str
    code: int | None = _optional()
    count: Annotated[int, Field(ge=0, le=100_000)] = 1


# --- requests ---------------------------------------------------------------


class _Request(StrictModel):
    jsonrpc: Literal["2.0"] = "2.0"
    id: RequestId


class JoinRequest(_Request):
    """A ``join`` request."""

    method: Literal["join"] = "join"
    params: JoinParams


class LeaveRequest(_Request):
    """A ``leave`` request."""

    method: Literal["leave"] = "leave"
    params: EmptyParams = Field(default_factory=EmptyParams)


class PublishRequest(_Request):
    """A ``publish`` request."""

    method: Literal["publish"] = "publish"
    params: PublishParams = Field(default_factory=PublishParams)


class UnpublishRequest(_Request):
    """An ``unpublish`` request."""

    method: Literal["unpublish"] = "unpublish"
    params: EmptyParams = Field(default_factory=EmptyParams)


class SubscribeRequest(_Request):
    """A ``subscribe`` request."""

    method: Literal["subscribe"] = "subscribe"
    params: TargetParams


class UnsubscribeRequest(_Request):
    """An ``unsubscribe`` request."""

    method: Literal["unsubscribe"] = "unsubscribe"
    params: TargetParams


class SdpOfferRequest(_Request):
    """An ``sdpOffer`` request (publisher to subscriber)."""

    method: Literal["sdpOffer"] = "sdpOffer"
    params: SdpParams


class SdpAnswerRequest(_Request):
    """An ``sdpAnswer`` request (subscriber to publisher)."""

    method: Literal["sdpAnswer"] = "sdpAnswer"
    params: SdpParams


class IceCandidateRequest(_Request):
    """An ``iceCandidate`` request."""

    method: Literal["iceCandidate"] = "iceCandidate"
    params: IceCandidateParams


class SendMessageRequest(_Request):
    """A ``sendMessage`` request."""

    method: Literal["sendMessage"] = "sendMessage"
    params: SendMessageParams


class SendSyncDataRequest(_Request):
    """A ``sendSyncData`` request."""

    method: Literal["sendSyncData"] = "sendSyncData"
    params: SendSyncDataParams


class GetSessionStateRequest(_Request):
    """A ``getSessionState`` request."""

    method: Literal["getSessionState"] = "getSessionState"
    params: EmptyParams = Field(default_factory=EmptyParams)


class CloseSessionRequest(_Request):
    """A ``closeSession`` request."""

    method: Literal["closeSession"] = "closeSession"
    params: CloseSessionParams = Field(default_factory=CloseSessionParams)


class PingRequest(_Request):
    """A ``ping`` request."""

    method: Literal["ping"] = "ping"
    params: EmptyParams = Field(default_factory=EmptyParams)


class SimulateScenarioRequest(_Request):
    """A ``simulateScenario`` request (servers with simulation allowed)."""

    method: Literal["simulateScenario"] = "simulateScenario"
    params: SimulateScenarioParams


# --- results ----------------------------------------------------------------


class EmptyResult(Model):
    """``{}``: the result of methods that return nothing."""


class JoinResult(Model):
    """The result of ``join``."""

    session_id: str
    participant_id: str
    participant_secret: str
    participant_type: str
    roles: list[str] = Field(default_factory=list)
    participants: list[Participant] = Field(default_factory=list)
    sync_state: SyncState | None = _optional()
    seq: int
    resumed: bool
    resume_window: float | None = _optional()
    """Seconds the server keeps the seat after a drop (None: a server that does not say)."""


class PublishResult(Model):
    """The result of ``publish``."""

    stream_id: str


class SubscribeResult(Model):
    """The result of ``subscribe``."""

    exchange_id: str


class SessionStateResult(Model):
    """The result of ``getSessionState``."""

    session_id: str
    participants: list[Participant] = Field(default_factory=list)
    sync_state: SyncState | None = _optional()


class PingResult(Model):
    """The result of ``ping``."""

    server_time: float


# --- responses ----------------------------------------------------------------


class Response(Model):
    """A successful response; ``result`` is parsed by the caller, who knows the method."""

    jsonrpc: Literal["2.0"] = "2.0"
    id: ResponseId
    result: dict[str, Any]


class ErrorObject(Model):
    """A JSON-RPC error object; ``data.name`` carries the catalog name."""

    code: int
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(Model):
    """An error response; ``id`` is None when the request's id could not be read."""

    jsonrpc: Literal["2.0"] = "2.0"
    id: ResponseId | None
    error: ErrorObject


# --- notifications --------------------------------------------------------------


class _Params(Model):
    seq: int


class _Notification(Model):
    jsonrpc: Literal["2.0"] = "2.0"


class ParticipantJoinedParams(_Params):
    """``participantJoined`` params."""

    participant: Participant


class ParticipantLeftParams(_Params):
    """``participantLeft`` params; ``reason`` is left, disconnected, evicted or sessionClosed."""

    participant_id: str
    reason: str


class StreamPublishedParams(_Params):
    """``streamPublished`` params."""

    participant_id: str
    audio: bool
    video: bool


class StreamUnpublishedParams(_Params):
    """``streamUnpublished`` params."""

    participant_id: str


class SubscribeRequestParams(_Params):
    """``subscribeRequest`` params: a subscriber wants this publisher's media."""

    exchange_id: str
    subscriber_id: str


class SdpNotificationParams(_Params):
    """``sdpOffer``/``sdpAnswer`` notification params."""

    exchange_id: str
    from_: str = Field(alias="from")
    sdp: str


class IceCandidateNotificationParams(_Params):
    """``iceCandidate`` notification params."""

    exchange_id: str
    from_: str = Field(alias="from")
    candidate: str
    sdp_mid: str | None = _optional()
    sdp_m_line_index: int | None = _optional()


class SubscriptionEndedParams(_Params):
    """``subscriptionEnded`` params."""

    exchange_id: str
    participant_id: str
    reason: str


class MessageReceivedParams(_Params):
    """``messageReceived`` params; ``private`` is true when sent to a list."""

    from_: str = Field(alias="from")
    text: str
    private: bool


class SyncDataParams(_Params):
    """``syncData`` params."""

    from_: str = Field(alias="from")
    position: float
    playing: bool
    rate: float = 1.0
    media_id: str | None = _optional()
    server_time: float


class SessionErrorParams(_Params):
    """``sessionError`` params: an error that answers no request."""

    code: int
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class SessionClosedParams(_Params):
    """``sessionClosed`` params."""

    session_id: str
    reason: str


class ParticipantJoinedNotification(_Notification):
    """``participantJoined``."""

    method: Literal["participantJoined"] = "participantJoined"
    params: ParticipantJoinedParams


class ParticipantLeftNotification(_Notification):
    """``participantLeft``."""

    method: Literal["participantLeft"] = "participantLeft"
    params: ParticipantLeftParams


class StreamPublishedNotification(_Notification):
    """``streamPublished``."""

    method: Literal["streamPublished"] = "streamPublished"
    params: StreamPublishedParams


class StreamUnpublishedNotification(_Notification):
    """``streamUnpublished``."""

    method: Literal["streamUnpublished"] = "streamUnpublished"
    params: StreamUnpublishedParams


class SubscribeRequestNotification(_Notification):
    """``subscribeRequest`` (to the publisher, who answers with ``sdpOffer``)."""

    method: Literal["subscribeRequest"] = "subscribeRequest"
    params: SubscribeRequestParams


class SdpOfferNotification(_Notification):
    """``sdpOffer`` (to the subscriber)."""

    method: Literal["sdpOffer"] = "sdpOffer"
    params: SdpNotificationParams


class SdpAnswerNotification(_Notification):
    """``sdpAnswer`` (to the publisher)."""

    method: Literal["sdpAnswer"] = "sdpAnswer"
    params: SdpNotificationParams


class IceCandidateNotification(_Notification):
    """``iceCandidate`` (to the other side of the exchange)."""

    method: Literal["iceCandidate"] = "iceCandidate"
    params: IceCandidateNotificationParams


class SubscriptionEndedNotification(_Notification):
    """``subscriptionEnded``."""

    method: Literal["subscriptionEnded"] = "subscriptionEnded"
    params: SubscriptionEndedParams


class MessageReceivedNotification(_Notification):
    """``messageReceived``."""

    method: Literal["messageReceived"] = "messageReceived"
    params: MessageReceivedParams


class SyncDataNotification(_Notification):
    """``syncData``."""

    method: Literal["syncData"] = "syncData"
    params: SyncDataParams


class SessionErrorNotification(_Notification):
    """``sessionError``."""

    method: Literal["sessionError"] = "sessionError"
    params: SessionErrorParams


class SessionClosedNotification(_Notification):
    """``sessionClosed``."""

    method: Literal["sessionClosed"] = "sessionClosed"
    params: SessionClosedParams
