"""roomsignal: an asyncio client for room-based WebRTC signaling.

Join a room with a token, publish and subscribe through SDP/ICE exchange,
keep playback in sync, chat, and learn exactly what went wrong as typed,
awaitable ``SessionError`` events.
"""

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
