"""Smaller mirrors of the room: what equal ``Participant`` models can share.

A session keeps a ``Participant`` for every other member of its room. Most
of one such model's memory is not its values: pydantic gives every instance
its own ``model_fields_set`` (a ``set`` of 5 or 6 names: 728 bytes, more than
half of the model), and each model holds its own copy of the same short
strings (``participant_type``, role names). ``compact()`` makes equal ones
one object: the fields-set of every participant with the same fields set is
one ``set`` (pydantic never mutates the fields-set of a frozen model; its
``model_copy`` copies it first), and the short strings are interned. The
values, their types and every comparison stay what they were; only identity
is shared. See docs/benchmarks.md, "Memory per joined session".
"""

from __future__ import annotations

import sys

from roomsignal.protocol import Participant

__all__ = ["compact"]

_FIELD_SETS: dict[frozenset[str], set[str]] = {}
_MAX_FIELD_SETS = 64  # extra (unknown) fields make new keys: bound the table
_intern = sys.intern
_set_attr = object.__setattr__


def compact(participant: Participant) -> Participant:
    """Share ``participant``'s fields-set and short strings with its equals; returns it."""
    fields = participant.__pydantic_fields_set__
    key = frozenset(fields)
    shared = _FIELD_SETS.get(key)
    if shared is None:
        if len(_FIELD_SETS) < _MAX_FIELD_SETS:
            _FIELD_SETS[key] = fields
    elif shared is not fields:
        _set_attr(participant, "__pydantic_fields_set__", shared)
    values = participant.__dict__
    kind = values.get("participant_type")
    if type(kind) is str:
        values["participant_type"] = _intern(kind)
    roles = values.get("roles")
    if type(roles) is list and all(type(role) is str for role in roles):
        roles[:] = [_intern(role) for role in roles]
    return participant
