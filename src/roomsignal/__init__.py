"""roomsignal: an asyncio client for room-based WebRTC signaling.

Join a room with a token, publish and subscribe through SDP/ICE exchange,
keep playback in sync, chat, and learn exactly what went wrong as typed,
awaitable ``SessionError`` events.
"""

import logging

from roomsignal.catalog import ErrorCode, lookup
from roomsignal.client import (
    Connected,
    Disconnected,
    ParticipantType,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    RequestTimeoutError,
    Session,
    SessionEnded,
    SessionState,
)
from roomsignal.errors import (
    MediaError,
    ProtocolError,
    SessionError,
    SessionErrorException,
    SessionStateError,
    TokenError,
    UnknownError,
    UserError,
)

__version__ = "0.1.0"

# A library's logs are the app's to show: none on stderr unless it configures logging
# (without this, Python's last-resort handler prints every warning, unformatted).
logging.getLogger("roomsignal").addHandler(logging.NullHandler())

__all__ = [
    "Connected",
    "Disconnected",
    "ErrorCode",
    "MediaError",
    "ParticipantType",
    "ProtocolError",
    "ReconnectPolicy",
    "Reconnected",
    "Reconnecting",
    "RequestTimeoutError",
    "Session",
    "SessionEnded",
    "SessionError",
    "SessionErrorException",
    "SessionState",
    "SessionStateError",
    "TokenError",
    "UnknownError",
    "UserError",
    "__version__",
    "lookup",
]
