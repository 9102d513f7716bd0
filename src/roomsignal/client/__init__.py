"""The asyncio client: ``Session``, its events, and the reconnection policy."""

from roomsignal.client._events import (
    Connected,
    Disconnected,
    ParticipantType,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    SessionEnded,
    SessionState,
)
from roomsignal.client._listeners import ErrorStream
from roomsignal.client._payloads import MessageReceived, ParticipantLeft, SubscribeRequest
from roomsignal.client._session import RequestTimeoutError, Session
from roomsignal.client._supervise import TokenProvider
from roomsignal.client._urls import UrlProvider, UrlSource

__all__ = [
    "Connected",
    "Disconnected",
    "ErrorStream",
    "MessageReceived",
    "ParticipantLeft",
    "ParticipantType",
    "ReconnectPolicy",
    "Reconnected",
    "Reconnecting",
    "RequestTimeoutError",
    "Session",
    "SessionEnded",
    "SessionState",
    "SubscribeRequest",
    "TokenProvider",
    "UrlProvider",
    "UrlSource",
]
