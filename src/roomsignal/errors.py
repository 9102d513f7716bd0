"""The error model apps receive, and the exception tree awaited calls raise.

``SessionError`` is what every ``on_session_error`` listener gets, whatever
found the error (a response, a ``sessionError`` notification, a bad frame, or
the client itself). ``SessionErrorException`` carries one; its subclasses
follow the catalog's categories, so ``except TokenError:`` works.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from roomsignal.catalog import Category, lookup

__all__ = [
    "MediaError",
    "ProtocolError",
    "SessionError",
    "SessionErrorException",
    "SessionStateError",
    "TokenError",
    "UnknownError",
    "UserError",
    "exception_for",
    "make_error",
]

Source = Literal["server", "client"]


class SessionError(BaseModel):
    """One error, as the listeners receive it (frozen).

    ``name``, ``category`` and ``description`` come from the catalog; a code it
    does not know keeps its number, with category ``unknown``. ``method`` is
    the request that failed, if any; ``session_id`` and ``participant_id`` are
    the receiving session's own (the participant an error is about, if any,
    is ``data["participantId"]``); ``received_at`` is Unix time in seconds.
    ``recovering`` is True for a failure the client expected on its way back
    and recovers from by itself: a reconnection attempt's ``join`` that failed
    while the policy tries again (a resume refused with 106 after the seat
    expired or the server restarted, before the fresh join; a connection a
    cluster node closed with 1012 while the room moved): reported, but no
    failure of the app's (docs/client.md, "Failover").
    """

    model_config = ConfigDict(frozen=True)

    code: int
    name: str
    category: Category
    message: str
    description: str
    data: dict[str, Any] = Field(default_factory=dict)
    method: str | None = None
    source: Source = "server"
    session_id: str | None = None
    participant_id: str | None = None
    received_at: float = Field(default_factory=time.time)
    recovering: bool = False

    @property
    def retryable(self) -> bool:
        """Whether the catalog says trying again can help."""
        return lookup(self.code).retryable


def make_error(
    code: int,
    message: str,
    data: Mapping[str, Any] | None = None,
    *,
    method: str | None = None,
    source: Source = "server",
    session_id: str | None = None,
    participant_id: str | None = None,
    copy_data: bool = True,
    received_at: float | None = None,
) -> SessionError:
    """Build a ``SessionError`` from a wire error object's parts (or the client's own).

    The one place where errors are made: responses, ``sessionError``
    notifications, decode failures and client-side failures all come here.
    ``method`` defaults to ``data["method"]`` when the server named it.
    ``copy_data=False`` adopts ``data`` itself (a dict nobody else holds).
    ``received_at`` (Unix seconds) defaults to now.
    """
    entry = lookup(code)
    if not data:
        payload: dict[str, Any] = {}
    elif copy_data or type(data) is not dict:
        payload = dict(data)
    else:
        payload = data
    if method is None:
        named = payload.get("method")
        if isinstance(named, str):
            method = named
    fields = {
        "code": entry.code,
        "name": entry.name,
        "category": entry.category,
        "message": message,
        "description": entry.description,
        "data": payload,
        "method": method,
        "source": source,
        "session_id": session_id,
        "participant_id": participant_id,
        "received_at": time.time() if received_at is None else received_at,
        "recovering": False,
    }
    if (
        type(message) is str
        and (session_id is None or type(session_id) is str)
        and source in _SOURCES
    ):
        # Every field is of its declared type already (the catalog's entry, our
        # own strings, a fresh dict): skip re-validation on this hot path.
        return _trusted(fields)
    return SessionError(**fields)


_SOURCES = frozenset({"server", "client"})
# Shared by every error built here: it holds every field already, and pydantic
# copies it before adding to it (model_copy), so nothing ever changes it.
_FIELDS_SET = set(SessionError.model_fields)
_new = object.__new__
# BaseModel's own slots, set through their descriptors: about a third of the cost of
# ``object.__setattr__`` (which packs its arguments into a tuple on every call).
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _trusted(fields: dict[str, Any]) -> SessionError:
    """A ``SessionError`` from fields known to be valid (what ``model_construct`` does, faster)."""
    error: SessionError = _new(SessionError)
    _set_dict(error, fields)
    _set_fields_set(error, _FIELDS_SET)
    _set_extra(error, None)
    _set_private(error, None)
    return error


def _server_error(
    code: int,
    message: str,
    data: dict[str, Any] | None,
    session_id: str | None,
    participant_id: str | None,
    received_at: float,
) -> SessionError:
    """``make_error`` for a ``sessionError`` notification's decoded params (the hot path).

    ``message`` must be a str and ``data`` a dict nobody else holds (it is
    adopted) or None. A catalog code's fixed fields come from a template made once
    per code, in field order; any other code goes through ``make_error``.
    """
    template = _TEMPLATES.get(code)
    if template is None:
        if lookup(code).category == "unknown":
            return make_error(
                code,
                message,
                data,
                source="server",
                session_id=session_id,
                participant_id=participant_id,
                copy_data=False,
                received_at=received_at,
            )
        template = _TEMPLATES[code] = _template(code)
    fields = template.copy()
    fields["message"] = message
    if data:
        fields["data"] = data
        method = data.get("method")
        if type(method) is str:
            fields["method"] = method
    else:
        fields["data"] = {}
    fields["session_id"] = session_id
    fields["participant_id"] = participant_id
    fields["received_at"] = received_at
    error: SessionError = _new(SessionError)  # _trusted(), inlined on this hot path
    _set_dict(error, fields)
    _set_fields_set(error, _FIELDS_SET)
    _set_extra(error, None)
    _set_private(error, None)
    return error


def _template(code: int) -> dict[str, Any]:
    entry = lookup(code)
    return {
        "code": entry.code,
        "name": entry.name,
        "category": entry.category,
        "message": "",
        "description": entry.description,
        "data": None,
        "method": None,
        "source": "server",
        "session_id": None,
        "participant_id": None,
        "received_at": 0.0,
        "recovering": False,
    }


_TEMPLATES: dict[int, dict[str, Any]] = {}


class SessionErrorException(Exception):
    """Raised by an awaited call that failed; ``error`` is the ``SessionError``."""

    def __init__(self, error: SessionError) -> None:
        super().__init__(f"{error.code} {error.name}: {error.message}")
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.error,))

    @property
    def code(self) -> int:
        """The error's code."""
        return self.error.code


class UserError(SessionErrorException):
    """An error of category ``user``."""


class SessionStateError(SessionErrorException):
    """An error of category ``session``."""


class MediaError(SessionErrorException):
    """An error of category ``media``."""


class TokenError(SessionErrorException):
    """An error of category ``token``."""


class ProtocolError(SessionErrorException):
    """An error of category ``protocol``: a frame that is not a valid message.

    Also what ``roomsignal.protocol.decode`` raises; ``request_id`` is the
    frame's ``id`` when one could be read (so a server can answer it).
    """

    def __init__(self, error: SessionError, request_id: int | str | None = None) -> None:
        super().__init__(error)
        self.request_id = request_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.error, self.request_id))


class UnknownError(SessionErrorException):
    """An error whose code the catalog does not know."""


_BY_CATEGORY: dict[str, type[SessionErrorException]] = {
    "user": UserError,
    "session": SessionStateError,
    "media": MediaError,
    "token": TokenError,
    "protocol": ProtocolError,
    "unknown": UnknownError,
}


def exception_for(error: SessionError) -> SessionErrorException:
    """The exception of the error's category, carrying it."""
    return _BY_CATEGORY[error.category](error)
