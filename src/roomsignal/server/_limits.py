"""Size limits on what one member may make the server (and the others) hold.

Checked on a request's params before the room's rules, since a field over
its limit is ``-32602`` (docs/protocol.md section 2): ``data.errors`` names
the field (``loc``), says the limit in ``msg`` and carries it as ``limit``.
Sizes are UTF-8 bytes: of the string for ``name``, ``text``, ``sdp`` and
``candidate``, of the compact JSON for ``metadata``. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import pydantic_core

from roomsignal.protocol import (
    IceCandidateRequest,
    JoinRequest,
    Request,
    SdpAnswerRequest,
    SdpOfferRequest,
    SendMessageRequest,
)
from roomsignal.server._config import ServerConfig
from roomsignal.server._denials import Denial, RoomError

__all__ = ["check_sizes", "json_size", "text_size", "too_large"]


def text_size(value: str) -> int:
    """The UTF-8 size of ``value`` in bytes (without encoding an ASCII string)."""
    return len(value) if value.isascii() else len(value.encode())


def json_size(value: Any) -> int:
    """The size in bytes of ``value`` as compact JSON (0 for None)."""
    if value is None:
        return 0
    return len(pydantic_core.to_json(value))


def too_large(field: str, limit: int, setting: str, what: str = "") -> RoomError:
    """The ``-32602`` refusal of a field over its limit."""
    message = f"{field} is over the limit of {limit} bytes ({setting}){what}"
    errors = [{"loc": ["params", field], "msg": message, "limit": limit}]
    return RoomError(Denial.TOO_LARGE, message=message, errors=errors)


def _check_text(value: str | None, field: str, limit: int, setting: str) -> None:
    # A string of n characters holds n to 4n UTF-8 bytes: encode only when in doubt.
    if value is not None and len(value) * 4 > limit and text_size(value) > limit:
        raise too_large(field, limit, setting)


def check_sizes(request: Request, config: ServerConfig) -> None:
    """Raise ``RoomError`` (-32602) if a field of ``request`` is over its limit."""
    if isinstance(request, SendMessageRequest):
        _check_text(request.params.text, "text", config.max_text_bytes, "max_text_bytes")
    elif isinstance(request, IceCandidateRequest):
        _check_text(
            request.params.candidate, "candidate", config.max_candidate_bytes, "max_candidate_bytes"
        )
    elif isinstance(request, SdpOfferRequest | SdpAnswerRequest):
        _check_text(request.params.sdp, "sdp", config.max_sdp_bytes, "max_sdp_bytes")
    elif isinstance(request, JoinRequest):
        params = request.params
        _check_text(params.name, "name", config.max_name_bytes, "max_name_bytes")
        if json_size(params.metadata) > config.max_metadata_bytes:
            raise too_large("metadata", config.max_metadata_bytes, "max_metadata_bytes")
