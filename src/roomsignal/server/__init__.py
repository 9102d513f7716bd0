"""The reference roomsignal signaling server (docs/protocol.md, all of it).

``SignalingServer`` is the websockets transport; the rooms it serves are a
pure state machine (``Rooms``) that can be driven and tested without a socket.

    async with SignalingServer(secret="s3cret", allow_simulation=True) as server:
        print(server.url)  # ws://127.0.0.1:<port>
        await server.serve_forever()
"""

from roomsignal.server._config import ServerConfig
from roomsignal.server._rooms import Denial, ExchangeState, RoomError, Rooms
from roomsignal.server._transport import SignalingServer

__all__ = [
    "Denial",
    "ExchangeState",
    "RoomError",
    "Rooms",
    "ServerConfig",
    "SignalingServer",
]
