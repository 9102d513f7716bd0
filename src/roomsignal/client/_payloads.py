"""Room events with the participants they name resolved from the session's mirror.

The wire's notification params carry ids only (``from``, ``subscriberId``,
``participantId``). The client core hands the listeners these subclasses,
which keep every wire field (ids included, so code written against the
params still works) and add the ``Participant`` the id names, as the mirror
knew it when the notification arrived: None for an id the mirror does not
know. They are built with ``model_construct`` from the already validated
params (no second validation), and only for these three kinds; the hot
``sessionError`` path is untouched.

``Participant`` is the wire model: frozen, so a view handed to a listener
never changes under it; the mirror replaces it on each update.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from pydantic import Field

from roomsignal.protocol import (
    MessageReceivedParams,
    Participant,
    ParticipantLeftParams,
    SubscribeRequestParams,
)
from roomsignal.protocol._models import Model

__all__ = ["MessageReceived", "ParticipantLeft", "SubscribeRequest", "resolved"]

M = TypeVar("M", bound=Model)


class MessageReceived(MessageReceivedParams):
    """A chat message; ``sender`` is the participant ``from_`` names."""

    sender: Participant | None = Field(default=None, exclude=True)


class SubscribeRequest(SubscribeRequestParams):
    """A subscriber wants our media; ``subscriber`` is the one ``subscriber_id`` names."""

    subscriber: Participant | None = Field(default=None, exclude=True)


class ParticipantLeft(ParticipantLeftParams):
    """Someone left; ``participant`` is who they were (from the mirror, before removal)."""

    participant: Participant | None = Field(default=None, exclude=True)


def resolved(cls: type[M], params: Model, **extra: Any) -> M:
    """``params`` as ``cls`` (a subclass adding fields), with ``extra`` set; no validation."""
    values = dict(params.__dict__)
    if params.__pydantic_extra__:
        values.update(params.__pydantic_extra__)
    values.update(extra)
    return cast(M, cls.model_construct(params.model_fields_set | extra.keys(), **values))
