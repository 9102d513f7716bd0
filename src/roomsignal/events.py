"""Every payload a ``Session`` listener receives, from one public place.

The notification payloads are the wire's models (``roomsignal.protocol``);
the connection events are the client's own. Import them from here:

```python
from roomsignal.events import MessageReceivedParams, Reconnected
```

| listener | payload |
|---|---|
| ``on_session_error`` | [`SessionError`][roomsignal.SessionError] |
| ``on_participant_joined`` | [`ParticipantJoinedParams`][roomsignal.events.ParticipantJoinedParams] |
| ``on_participant_left`` | [`ParticipantLeft`][roomsignal.events.ParticipantLeft] (``ParticipantLeftParams`` and ``participant``) |
| ``on_stream_published`` | [`StreamPublishedParams`][roomsignal.events.StreamPublishedParams] |
| ``on_stream_unpublished`` | [`StreamUnpublishedParams`][roomsignal.events.StreamUnpublishedParams] |
| ``on_subscribe_request`` | [`SubscribeRequest`][roomsignal.events.SubscribeRequest] (``SubscribeRequestParams`` and ``subscriber``) |
| ``on_subscription_ended`` | [`SubscriptionEndedParams`][roomsignal.events.SubscriptionEndedParams] |
| ``on_sdp_offer`` / ``on_sdp_answer`` | [`SdpNotificationParams`][roomsignal.events.SdpNotificationParams] |
| ``on_ice_candidate`` | [`IceCandidateNotificationParams`][roomsignal.events.IceCandidateNotificationParams] |
| ``on_message`` | [`MessageReceived`][roomsignal.events.MessageReceived] (``MessageReceivedParams`` and ``sender``) |
| ``on_sync_data`` | [`SyncDataParams`][roomsignal.events.SyncDataParams] |
| ``on_session_closed`` | [`SessionClosedParams`][roomsignal.events.SessionClosedParams] |
| ``on_connected`` | [`Connected`][roomsignal.Connected] |
| ``on_reconnecting`` | [`Reconnecting`][roomsignal.Reconnecting] |
| ``on_reconnected`` | [`Reconnected`][roomsignal.Reconnected] |
| ``on_disconnected`` | [`Disconnected`][roomsignal.Disconnected] |
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
