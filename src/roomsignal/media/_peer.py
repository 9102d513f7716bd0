"""One ``RTCPeerConnection`` bound to one exchange of a ``Session``.

What the publisher's and the subscriber's side share: applying remote
candidates in order, whenever they come (trickled ones held until the remote
description is set, end-of-candidates included), sending our own description
whole or trickled, the tasks the exchange owns, and an idempotent close.
Also the default configuration (no ICE servers) and the reset event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from aiortc import RTCConfiguration, RTCIceCandidate, RTCPeerConnection, RTCSessionDescription

from roomsignal.client import Session
from roomsignal.media._sdp import bundle_tags, parse_candidate, split_candidates
from roomsignal.media._tracks import Feed
from roomsignal.protocol import IceCandidateNotificationParams

__all__ = [
    "MediaReset",
    "Peer",
    "SessionListeners",
    "default_configuration",
    "resolve_configuration",
]

logger = logging.getLogger("roomsignal.media")

ResetListener = Callable[["MediaReset"], Any]
_Event = TypeVar("_Event")


class SessionListeners:
    """Keeps its ``_on_<event>`` methods as listeners of ``session``, for each of ``_EVENTS``.

    ``_listen()`` adds them once, ``_unlisten()`` removes them once (both idempotent).
    """

    session: Any
    _EVENTS: ClassVar[tuple[str, ...]] = ()
    _listening = False

    def _listen(self) -> None:
        self._bind(True)

    def _unlisten(self) -> None:
        self._bind(False)

    def _bind(self, on: bool) -> None:
        if self._listening is on:
            return
        self._listening = on
        verb = "on" if on else "off"
        for event in self._EVENTS:
            getattr(self.session, f"{verb}_{event}")(getattr(self, f"_on_{event}"))


def default_configuration() -> RTCConfiguration:
    """No ICE servers: host candidates only (aiortc's own default names a public STUN server)."""
    return RTCConfiguration(iceServers=[])


def resolve_configuration(configuration: RTCConfiguration | None) -> RTCConfiguration:
    """The configuration to use: ours by default; ``iceServers=None`` also means none here."""
    if configuration is None:
        return default_configuration()
    if configuration.iceServers is None:
        return dataclasses.replace(configuration, iceServers=[])
    return configuration


@dataclass(frozen=True, slots=True)
class MediaReset:
    """The session joined afresh (its state was reset): these exchanges' connections were closed.

    ``exchange_ids`` are the exchanges closed, ``participant_id`` the new seat's
    id; ``republished`` says whether a publisher published its tracks again.
    """

    exchange_ids: tuple[str, ...]
    participant_id: str
    republished: bool = False


async def notify(
    listeners: Sequence[Callable[[_Event], Any]], event: _Event, what: str = "reset"
) -> None:
    """Call each ``what`` listener (sync or async), one after another; one that raises is logged, not fatal."""
    for fn in list(listeners):
        try:
            result = fn(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("%s listener %r failed", what, fn)


class Peer:
    """One peer connection for one exchange; both sides use it."""

    def __init__(
        self,
        session: Session,
        exchange_id: str,
        remote_id: str,
        configuration: RTCConfiguration,
        *,
        trickle: bool,
        on_failed: Callable[[Peer], None],
        on_closed: Callable[[Peer], None],
    ) -> None:
        self.session = session
        self.exchange_id = exchange_id
        self.remote_id = remote_id
        self.trickle = trickle
        self.pc = RTCPeerConnection(configuration)
        self.feeds: list[Feed] = []  # ended on close (the subscriber's remote tracks)
        self.closed = False
        self.close_reason: str | None = None
        self._on_failed = on_failed
        self._on_closed = on_closed
        self._remote_set = False
        self._bundle: dict[str, str] = {}
        self._held: list[RTCIceCandidate | None] = []
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing: asyncio.Task[None] | None = None
        self.pc.on("connectionstatechange", self._state_changed)

    def __repr__(self) -> str:
        return f"<Peer {self.exchange_id} with {self.remote_id} {self.pc.connectionState}>"

    def _state_changed(self) -> None:
        if self.pc.connectionState == "failed" and not self.closed:
            logger.warning("exchange %s: the peer connection failed", self.exchange_id)
            self._on_failed(self)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of this exchange (cancelled and awaited on close)."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{name}-{self.exchange_id}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "exchange %s: task %s failed",
                self.exchange_id,
                task.get_name(),
                exc_info=task.exception(),
            )

    # -- remote side -----------------------------------------------------------------

    async def set_remote(self, sdp: str, kind: Literal["offer", "answer"]) -> None:
        """Apply the remote description, then the candidates that came before it."""
        async with self._lock:
            if self.closed:
                return
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
            self._bundle = bundle_tags(sdp)
            self._remote_set = True
            held, self._held = self._held, []
            for candidate in held:
                await self._apply(candidate)

    async def add_candidate(self, event: IceCandidateNotificationParams) -> None:
        """Apply a trickled candidate (or end-of-candidates), or hold it for the description."""
        try:
            candidate = parse_candidate(event.candidate, event.sdp_mid, event.sdp_m_line_index)
        except ValueError as exc:
            logger.warning("exchange %s: dropped a bad candidate: %s", self.exchange_id, exc)
            return
        async with self._lock:
            if self.closed:
                return
            if not self._remote_set:
                self._held.append(candidate)
                return
            await self._apply(candidate)

    async def _apply(self, candidate: RTCIceCandidate | None) -> None:
        if candidate is not None and candidate.sdpMid in self._bundle:
            # aiortc looks candidates up by m-line and skips bundled ones: give
            # each to the BUNDLE group's transport, as the SDP says it belongs.
            candidate.sdpMid = self._bundle[candidate.sdpMid]
            candidate.sdpMLineIndex = None
        try:
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:  # aiortc refuses some (a closed transport, a bad mid)
            logger.warning("exchange %s: candidate not applied: %r", self.exchange_id, exc)

    # -- local side ---------------------------------------------------------------------

    async def send_local(self, kind: Literal["offer", "answer"]) -> None:
        """Send our description: whole (candidates inside), or as a browser would with ``trickle``.

        Raises the ``SessionErrorException`` of a refused request.
        """
        sdp = self.pc.localDescription.sdp
        send = self.session.send_offer if kind == "offer" else self.session.send_answer
        if not self.trickle:
            await send(self.exchange_id, sdp)
            return
        stripped, candidates = split_candidates(sdp)
        await send(self.exchange_id, stripped)
        for item in candidates:
            await self.session.send_ice_candidate(
                self.exchange_id,
                item.candidate,
                sdp_mid=item.sdp_mid,
                sdp_m_line_index=item.sdp_m_line_index,
            )

    # -- closing ------------------------------------------------------------------------------

    async def close(self, reason: str) -> None:
        """Close the connection and end what this exchange owns; idempotent."""
        if self._closing is None:
            self.closed = True
            self.close_reason = reason
            self._closing = asyncio.get_running_loop().create_task(
                self._close(), name=f"close-{self.exchange_id}"
            )
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        logger.info("exchange %s: closing (%s)", self.exchange_id, self.close_reason)
        try:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks)
            with contextlib.suppress(Exception):
                await self.pc.close()
            for feed in self.feeds:
                await feed.end()
        finally:
            self._on_closed(self)
