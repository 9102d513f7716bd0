"""The ``speedups`` extra: msgspec reads a ``sessionError`` notification in C.

``pip install roomsignal[speedups]`` installs msgspec; the client's hottest
path (``_codec.session_error_parts``) then checks a frame's shape and types
against the typed structs below instead of parsing it into dicts and
checking each field in Python: about 8 000 instructions less per event
(``benchmarks/instructions.py``). ``ROOMSIGNAL_NO_SPEEDUPS=1`` in the
environment turns it off. No ``from __future__ import annotations`` here:
msgspec reads these annotations at run time.
"""

import os
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["ERRORS", "read_session_error"]

read_session_error: Callable[[bytes | str], Any] | None = None
"""Decode one frame into a ``Note`` (raises one of ``ERRORS``), or None without msgspec."""
ERRORS: tuple[type[BaseException], ...] = (ValueError,)

try:
    if os.environ.get("ROOMSIGNAL_NO_SPEEDUPS"):
        raise ImportError("turned off by ROOMSIGNAL_NO_SPEEDUPS")
    import msgspec
except ImportError:
    pass
else:

    class Params(msgspec.Struct):
        """A sessionError's params; unknown keys are ignored, as ``decode`` keeps them aside."""

        seq: int
        code: int
        message: str
        data: dict[str, Any] = msgspec.field(default_factory=dict)

    class Note(msgspec.Struct, forbid_unknown_fields=True):
        """A plain sessionError notification: an ``id`` (or any other key) declines it."""

        jsonrpc: Literal["2.0"]
        method: Literal["sessionError"]
        params: Params

    read_session_error = msgspec.json.Decoder(Note).decode
    ERRORS = (msgspec.MsgspecError, ValueError, RecursionError)
