"""Every payload a ``Session`` listener receives, from one public place.

The notification payloads are the wire's models (``roomsignal.protocol``);
the connection events are the client's own. Import them from here::

    from roomsignal.events import MessageReceivedParams, Reconnected

| listener | payload |
|---|---|
| ``on_session_error`` | :class:`roomsignal.SessionError` |
| ``on_participant_joined`` | :class:`ParticipantJoinedParams` |
| ``on_participant_left`` | :class:`ParticipantLeft` (``ParticipantLeftParams`` and ``participant``) |
| ``on_stream_published`` | :class:`StreamPublishedParams` |
| ``on_stream_unpublished`` | :class:`StreamUnpublishedParams` |
| ``on_subscribe_request`` | :class:`SubscribeRequest` (``SubscribeRequestParams`` and ``subscriber``) |
| ``on_subscription_ended`` | :class:`SubscriptionEndedParams` |
| ``on_sdp_offer`` / ``on_sdp_answer`` | :class:`SdpNotificationParams` |
| ``on_ice_candidate`` | :class:`IceCandidateNotificationParams` |
| ``on_message`` | :class:`MessageReceived` (``MessageReceivedParams`` and ``sender``) |
| ``on_sync_data`` | :class:`SyncDataParams` |
| ``on_session_closed`` | :class:`SessionClosedParams` |
| ``on_connected`` | :class:`Connected` |
| ``on_reconnecting`` | :class:`Reconnecting` |
| ``on_reconnected`` | :class:`Reconnected` |
| ``on_disconnected`` | :class:`Disconnected` |
"""

from roomsignal.client import (
    Connected,
    Disconnected,
    MessageReceived,
    ParticipantLeft,
    Reconnected,
    Reconnecting,
    SessionEnded,
    SubscribeRequest,
)
from roomsignal.errors import SessionError
from roomsignal.protocol import (
    IceCandidateNotificationParams,
    MessageReceivedParams,
    Participant,
    ParticipantJoinedParams,
    ParticipantLeftParams,
    SdpNotificationParams,
    SessionClosedParams,
    StreamPublishedParams,
    Streams,
    StreamUnpublishedParams,
    SubscribeRequestParams,
    SubscriptionEndedParams,
    SyncDataParams,
    SyncState,
)

__all__ = [
    "Connected",
    "Disconnected",
    "IceCandidateNotificationParams",
    "MessageReceived",
    "MessageReceivedParams",
    "Participant",
    "ParticipantJoinedParams",
    "ParticipantLeft",
    "ParticipantLeftParams",
    "Reconnected",
    "Reconnecting",
    "SdpNotificationParams",
    "SessionClosedParams",
    "SessionEnded",
    "SessionError",
    "StreamPublishedParams",
    "StreamUnpublishedParams",
    "Streams",
    "SubscribeRequest",
    "SubscribeRequestParams",
    "SubscriptionEndedParams",
    "SyncDataParams",
    "SyncState",
]
