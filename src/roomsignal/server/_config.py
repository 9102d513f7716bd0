"""The reference server's limits and switches, in one frozen object.

``SignalingServer`` builds one from its keyword arguments; the room state
machine reads it and nothing else, so a test can build rooms without a socket.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServerConfig"]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Every limit of docs/protocol.md that the server enforces, with its defaults.

    ``closed_session_memory`` bounds how many closed session ids the server
    remembers to answer later joins with 203 (oldest forgotten first).
    ``write_buffer_limit`` is the most a connection may have buffered but not
    yet written before the server drops it as a slow consumer (the
    participant then keeps its seat for ``resume_window``, like any drop).
    """

    max_streaming_participants: int = 16
    max_sessions: int = 10_000
    sdp_timeout: float = 10.0
    ice_queue_limit: int = 64
    resume_window: float = 30.0
    max_frame_bytes: int = 65536
    replay_buffer: int = 1024
    allow_simulation: bool = False
    closed_session_memory: int = 65536
    write_buffer_limit: int = 16 * 2**20

    def __post_init__(self) -> None:
        for name in (
            "max_streaming_participants",
            "max_sessions",
            "ice_queue_limit",
            "max_frame_bytes",
            "replay_buffer",
            "closed_session_memory",
            "write_buffer_limit",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.sdp_timeout <= 0:
            raise ValueError("sdp_timeout must be positive")
        if self.resume_window < 0:
            raise ValueError("resume_window must not be negative")
