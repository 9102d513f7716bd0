"""The reference roomsignal signaling server (docs/protocol.md, all of it).

``SignalingServer`` is the websockets transport; the rooms it serves are a
pure state machine (``Rooms``) that can be driven and tested without a socket.

    async with SignalingServer(secret="s3cret", allow_simulation=True) as server:
        print(server.url)  # ws://127.0.0.1:<port>
        await server.serve_forever()

``Cluster`` runs a server as one node of many on Redis (extra ``redis``,
docs/scaling.md); importing this package never imports the Redis client.
"""

from roomsignal.server._cluster import Cluster
from roomsignal.server._config import ServerConfig
from roomsignal.server._rooms import Denial, ExchangeState, RoomError, Rooms
from roomsignal.server._transport import SignalingServer

__all__ = [
    "Cluster",
    "Denial",
    "ExchangeState",
    "RoomError",
    "Rooms",
    "ServerConfig",
    "SignalingServer",
]
