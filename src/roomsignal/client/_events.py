"""Payloads of the client's own life-cycle events, and the reconnection policy.

Room events reuse the protocol's notification params (``ParticipantJoinedParams``
and so on), which carry ``seq``; these are the events the client itself makes.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict

from roomsignal.errors import SessionError
from roomsignal.protocol import Participant, SessionClosedParams

__all__ = [
    "Connected",
    "Disconnected",
    "ParticipantType",
    "ReconnectPolicy",
    "Reconnected",
    "Reconnecting",
    "SessionEnded",
    "SessionState",
]


ParticipantType: TypeAlias = Literal["full", "viewer", "screen"]
"""What a participant joins as: ``full`` (publishes and subscribes), ``viewer``
(subscribes only) or ``screen`` (a screen share). The server answers 104 for
anything else."""


class SessionState(enum.StrEnum):
    """Where a ``Session`` is in its life."""

    IDLE = "idle"
    CONNECTING = "connecting"
    JOINED = "joined"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class Connected(_Event):
    """The first ``join`` succeeded."""

    session_id: str
    participant_id: str
    participants: list[Participant]


class Disconnected(_Event):
    """The connection closed; ``will_reconnect`` says whether the client tries again.

    ``code`` is the WebSocket close code (None when the connection dropped
    without a close frame).
    """

    code: int | None
    reason: str
    will_reconnect: bool


class SessionEnded(_Event):
    """Why a session ended: what ``await session.wait_closed()`` returns.

    ``by_client`` is True when ``close()`` (or leaving ``async with``) ended
    it; then ``error`` is None. Otherwise the session ended on its own and
    ``error`` is the final error the client reported to every listener (903
    connection lost for good or reconnection gave up, 904 replaced by
    another connection) when there was one. ``code`` and ``reason`` are how
    the last connection closed (``code`` None when there was no close frame,
    or no connection). ``session_closed`` is the server's ``sessionClosed``
    when a moderator closed the room (after its 203 ``sessionError``).
    """

    by_client: bool
    code: int | None = None
    reason: str = ""
    error: SessionError | None = None
    session_closed: SessionClosedParams | None = None


class Reconnecting(_Event):
    """The client is about to dial again after ``delay`` seconds.

    ``code`` and ``reason`` say how the connection it replaces ended (the
    close code, None when it dropped without a close frame).
    """

    attempt: int
    delay: float
    code: int | None = None
    reason: str = ""


class Reconnected(_Event):
    """The client is back in the session.

    ``resumed`` is true when the server gave the old seat back and replayed
    ``replayed`` missed notifications (none lost, none duplicated), and sent
    again the ``resent`` requests that had no answer (the server answers one
    it had handled from its cache: none is handled twice). When it is
    false, ``state_reset`` is true: the client joined afresh under a new
    participant id, what happened while it was away is gone, and each
    request that was in flight failed with 901; then the
    session has restored what it owns (unless ``restore_after_reset`` is
    off): ``republished`` says it published again with its last flags,
    ``resubscribed`` names the participants it subscribed to again (matched
    by name), ``awaiting`` those not back yet, subscribed to as they join.
    ``url`` is the URL it is back through (with several, maybe another node).
    """

    resumed: bool
    replayed: int
    state_reset: bool
    attempts: int
    participant_id: str
    url: str = ""
    resent: int = 0
    republished: bool = False
    resubscribed: tuple[str, ...] = ()
    awaiting: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How the client retries after an abnormal close.

    Exponential backoff with full jitter: attempt ``n`` waits a random time in
    ``[0, min(max_delay, initial_delay * multiplier ** (n - 1))]`` (exactly
    that bound when ``jitter`` is false). ``rejoin_on_reset`` says whether to
    join afresh when the server refuses the resume (106), rather than stop;
    that fresh join is made at once and is not counted as an attempt.
    Attempts count until a connection is stable: it delivered a notification,
    or stayed up ``stable_after`` seconds; so a connection that dies at once,
    time after time, ends in 903 rather than a loop. With
    ``outlast_seat`` (the default) the client goes on past ``max_attempts``
    while the server still keeps its seat: for the ``resumeWindow`` of the
    last join result (plus ``max_delay``) since the drop, so a server back
    within it is always found, and one back later gets a fresh join.
    """

    max_attempts: int = 10
    initial_delay: float = 0.1
    max_delay: float = 5.0
    multiplier: float = 2.0
    jitter: bool = True
    rejoin_on_reset: bool = True
    stable_after: float = 10.0
    outlast_seat: bool = True

    def gives_up(self, attempts: int, elapsed: float, resume_window: float | None) -> bool:
        """Whether to stop after ``attempts`` failed, ``elapsed`` seconds after the drop.

        ``resume_window`` is how long the server keeps the seat (None: unknown).
        """
        if attempts < self.max_attempts:
            return False
        if not self.outlast_seat or not resume_window or resume_window <= 0:
            return True
        return elapsed >= resume_window + self.max_delay

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (from 1)."""
        try:
            grown = self.initial_delay * self.multiplier ** max(0, attempt - 1)
        except OverflowError:  # attempts go on past max_attempts while the seat waits
            grown = self.max_delay
        bound = min(self.max_delay, grown)
        return random.uniform(0.0, bound) if self.jitter else bound
