"""The sans-I/O wire codec: models of every frame, one ``decode``, one ``encode``.

Shared by the client and the reference server; knows nothing of sockets or
event loops (as ``websockets.protocol`` and ``h11`` are built).
"""

from roomsignal.protocol._codec import (
    METHODS,
    NOTIFICATION_METHODS,
    Message,
    Notification,
    Request,
    decode,
    decode_response,
    decode_session_error,
    encode,
    error_response,
)
from roomsignal.protocol._models import *  # noqa: F403
from roomsignal.protocol._models import __all__ as _models_all

SUBPROTOCOL = "roomsignal.v1"

__all__ = [
    "METHODS",
    "NOTIFICATION_METHODS",
    "SUBPROTOCOL",
    "Message",
    "Notification",
    "Request",
    "decode",
    "decode_response",
    "decode_session_error",
    "encode",
    "error_response",
    *_models_all,
]
