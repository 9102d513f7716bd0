"""The reference server's limits and switches, in one frozen object.

``SignalingServer`` builds one from its keyword arguments; the room state
machine reads it and nothing else, so a test can build rooms without a socket.
docs/protocol.md (section "Server limits") lists every one with its default.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIN_FRAME_BYTES", "ServerConfig"]

_MIB = 2**20

MIN_FRAME_BYTES = 512
"""The smallest ``max_frame_bytes`` allowed: a ``join`` frame with a short
token and name is about 250 bytes, so a server below this could seat nobody."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Every limit of docs/protocol.md that the server enforces, with its defaults.

    ``closed_session_memory`` bounds how many closed session ids the server
    remembers to answer later joins with 203 (oldest forgotten first).
    ``max_send_queue_bytes`` is the most a connection may have written but
    not yet sent before the server closes it with 4002 (``slow``); its seat
    then waits ``resume_window``, like after any drop. Sizes are in bytes of
    the UTF-8 JSON the server holds (``max_*_bytes``); 0 for
    ``max_connections``, ``max_participants`` or ``max_fanout_per_second``
    means no limit. ``media_node`` routes media through a media node (an
    SFU, section 10) instead of peer to peer.
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
    max_send_queue_bytes: int = _MIB
    replay_buffer_bytes: int = 2 * _MIB
    max_participants: int = 2000
    max_name_bytes: int = 128
    max_metadata_bytes: int = 4096
    max_session_metadata_bytes: int = 256 * 1024
    max_text_bytes: int = 16384
    max_sdp_bytes: int = 49152
    max_candidate_bytes: int = 1024
    max_held_ice_bytes: int = 65536
    join_timeout: float = 10.0
    max_connections: int = 10_000
    max_fanout_per_second: int = 10_000
    media_node: bool = False  # media through a media node (PROTOCOL.md section 10)

    def __post_init__(self) -> None:
        for name in (
            "max_streaming_participants",
            "max_sessions",
            "ice_queue_limit",
            "max_frame_bytes",
            "replay_buffer",
            "closed_session_memory",
            "max_send_queue_bytes",
            "replay_buffer_bytes",
            "max_participants",
            "max_name_bytes",
            "max_metadata_bytes",
            "max_session_metadata_bytes",
            "max_text_bytes",
            "max_sdp_bytes",
            "max_candidate_bytes",
            "max_held_ice_bytes",
            "max_connections",
            "max_fanout_per_second",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.max_frame_bytes < MIN_FRAME_BYTES:
            raise ValueError(
                f"max_frame_bytes must be at least {MIN_FRAME_BYTES} "
                f"(a join frame would not fit in {self.max_frame_bytes})"
            )
        if self.sdp_timeout <= 0:
            raise ValueError("sdp_timeout must be positive")
        if self.join_timeout <= 0:
            raise ValueError("join_timeout must be positive")
        if self.resume_window < 0:
            raise ValueError("resume_window must not be negative")
