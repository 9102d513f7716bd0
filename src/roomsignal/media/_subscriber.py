"""``Subscriber`` and ``Subscription``: receive a participant's media through the signaling.

``await subscriber.subscribe(target)`` asks for the target's media, answers
the publisher's offer with an ``RTCPeerConnection``, applies its candidates
(in the SDP, or trickled, with end-of-candidates) and, by default, returns
once the first frame was decoded. A failed exchange raises the catalog's
exception (303 at ``sdp_timeout``, 103 when the publisher leaves mid-exchange,
105, 102, ...), which the session has already handed to its
``on_session_error`` listeners. Each remote track goes through a
``MediaRelay``: one reader counts its frames, and the user gets a track of
their own (``subscription.video``, ``subscription.audio``). With
``auto_subscribe`` the ``Subscriber`` subscribes by itself to everyone who
publishes, and after the media node's loss it subscribes again (``_auto``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, ClassVar

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    RTCStatsReport,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from roomsignal.catalog import ErrorCode
from roomsignal.client import Connected, Disconnected, Reconnected, Session
from roomsignal.errors import SessionError, SessionErrorException, exception_for
from roomsignal.media._auto import AutoSubscribe, Follower, SubscribedListener
from roomsignal.media._node import RestoredListener
from roomsignal.media._peer import (
    MediaReset,
    Peer,
    ResetListener,
    SessionListeners,
    notify,
    resolve_configuration,
)
from roomsignal.media._tracks import Feed
from roomsignal.protocol import (
    IceCandidateNotificationParams,
    ParticipantJoinedParams,
    ParticipantLeftParams,
    SdpNotificationParams,
    SessionClosedParams,
    StreamPublishedParams,
    SubscriptionEndedParams,
)

__all__ = ["FrameCounts", "Subscriber", "Subscription", "SubscriptionClosed"]

logger = logging.getLogger("roomsignal.media")

_ENDS_EXCHANGE = {ErrorCode.MEDIA_ENDPOINT_ERROR_CODE, ErrorCode.USER_CLOSED_ERROR_CODE}


class SubscriptionClosed(Exception):
    """The subscription ended before what was awaited happened; ``reason`` says why.

    Reasons: ``closed`` (by us), ``unpublished``, ``left`` (the publisher
    left), ``stateReset``, ``sessionEnded``, ``sessionClosed``,
    ``connectionFailed`` (ICE or DTLS failed), ``badOffer``; through a media
    node also ``mediaNodeLost`` and ``republished`` (the publisher published
    other tracks) and ``mediaNodeHangup``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"the subscription ended: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FrameCounts:
    """What a subscription has decoded so far."""

    video_frames: int
    audio_frames: int
    width: int | None
    height: int | None
    audio_sample_rate: int | None
    first_frame_s: float | None  # from subscribe() to the first decoded video frame


class Subscription:
    """One subscription to one participant's media; made by ``Subscriber.subscribe``."""

    def __init__(
        self,
        owner: Subscriber,
        target: str,
        exchange_id: str,
        started_at: float,
        peer: Peer,
    ) -> None:
        self.target = target
        self.exchange_id = exchange_id
        self.error: SessionError | None = None  # the exchange's failure, if it failed
        self._owner = owner
        self._peer = peer
        self._started_at = started_at
        self._kinds: set[str] = set()
        self._tracks: dict[str, MediaStreamTrack] = {}
        self._relays: list[MediaRelay] = []
        self._video = 0
        self._audio = 0
        self._size: tuple[int, int] | None = None
        self._rate: int | None = None
        self._first_video: float | None = None
        self._first_audio: float | None = None
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._answered = False
        self._answering = asyncio.Lock()
        self._target_left = False
        self._server_ended = False  # the server ended the exchange: no unsubscribe needed
        peer.pc.on("track", self._on_track)

    def __repr__(self) -> str:
        return (
            f"<Subscription {self.exchange_id} to {self.target} "
            f"{self.pc.connectionState}, {self._video} video frame(s)>"
        )

    # -- what the user reads ------------------------------------------------------------

    @property
    def pc(self) -> RTCPeerConnection:
        """The peer connection (read its states; ``get_stats()`` for its stats)."""
        return self._peer.pc

    @property
    def video(self) -> MediaStreamTrack | None:
        """The remote video as a track of your own (latest frame wins), once offered."""
        return self._tracks.get("video")

    @property
    def audio(self) -> MediaStreamTrack | None:
        """The remote audio as a track of your own (latest frame wins), once offered."""
        return self._tracks.get("audio")

    @property
    def closed(self) -> bool:
        """Whether the subscription has ended (see ``close_reason``)."""
        return self._peer.closed

    @property
    def close_reason(self) -> str | None:
        """Why it closed (``SubscriptionClosed`` reasons, or the error code as text)."""
        return self._peer.close_reason

    @property
    def frames(self) -> FrameCounts:
        """Frames decoded so far, the video size, and the time to the first video frame."""
        first = None if self._first_video is None else self._first_video - self._started_at
        return FrameCounts(
            video_frames=self._video,
            audio_frames=self._audio,
            width=self._size[0] if self._size else None,
            height=self._size[1] if self._size else None,
            audio_sample_rate=self._rate,
            first_frame_s=first,
        )

    async def get_stats(self) -> RTCStatsReport:
        """The peer connection's stats (``RTCPeerConnection.getStats()``)."""
        return await self._peer.pc.getStats()

    async def wait_for_media(self, timeout: float | None = None) -> Subscription:
        """Wait until media flows: the first video frame decoded (audio if only audio is offered).

        Raises the exchange's ``SessionErrorException`` if it failed (303,
        103, ...), ``SubscriptionClosed`` if it ended first, ``TimeoutError``.
        """

        def flowing() -> bool:
            if "video" in self._kinds or not self._kinds:
                return self._video > 0
            return self._audio > 0

        await self._wait(flowing, timeout)
        return self

    async def wait_for_frames(
        self, video: int = 1, *, audio: int = 0, timeout: float | None = None
    ) -> FrameCounts:
        """Wait until at least ``video`` video and ``audio`` audio frames were decoded."""
        await self._wait(lambda: self._video >= video and self._audio >= audio, timeout)
        return self.frames

    async def _wait(self, done: Callable[[], bool], timeout: float | None) -> None:
        if done():
            return
        self._raise_if_over()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (done, future)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await future
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    def _raise_if_over(self) -> None:
        if self.error is not None:
            raise exception_for(self.error)
        if self._peer.closed:
            raise SubscriptionClosed(self._peer.close_reason or "closed")

    def _progress(self) -> None:
        for done, future in list(self._waiters):
            if not future.done() and done():
                future.set_result(None)

    def _wake_all(self) -> None:
        for _, future in self._waiters:
            if not future.done():
                try:
                    self._raise_if_over()
                except Exception as exc:
                    future.set_exception(exc)

    async def close(self) -> None:
        """Unsubscribe (unless the server already ended the exchange) and close; idempotent."""
        if not self._peer.closed and not self._server_ended:
            self._server_ended = True
            with contextlib.suppress(SessionErrorException, TimeoutError):
                if self._owner.session.state == "joined":
                    await self._owner.session.unsubscribe(self.target)
        await self._end("closed")

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the exchange ------------------------------------------------------------------

    async def _end(self, reason: str) -> None:
        # Waiters are woken by the peer's close itself (``_closed``), which runs to
        # the end even when the task that started it is cancelled on the way.
        await self._peer.close(reason)

    async def _fail(self, error: SessionError) -> None:
        if self.error is None and not self._peer.closed:
            self.error = error
            self._server_ended = True
            await self._end(str(error.code))

    def _on_offer(self, sdp: str) -> None:
        self._peer.spawn(self._answer(sdp), "answer")

    async def _answer(self, sdp: str) -> None:
        async with self._answering:  # offers are answered one at a time, in order
            await self._answer_one(sdp)

    async def _answer_one(self, sdp: str) -> None:
        peer = self._peer
        try:
            await peer.set_remote(sdp, "offer")
            self._kinds = {t.kind for t in peer.pc.getTransceivers()}
            await peer.pc.setLocalDescription(passive(await peer.pc.createAnswer()))
            await peer.send_local("answer")
        except SessionErrorException as exc:  # 103 or 303: the exchange is over
            await self._fail(exc.error)
            return
        except Exception as exc:
            if not peer.closed:
                logger.warning("exchange %s: cannot answer the offer: %r", self.exchange_id, exc)
                await self.close_for("badOffer")
            return
        self._answered = True
        if self._target_left:
            await self.close_for("left")

    async def close_for(self, reason: str) -> None:
        """Close because the exchange ended for ``reason`` (no unsubscribe)."""
        self._server_ended = True
        await self._end(reason)

    def _target_gone(self) -> None:
        """The publisher left: if the exchange was complete it ended; else a 103 will come."""
        self._target_left = True
        if self._answered:
            self._peer.spawn(self.close_for("left"), "left")

    def _on_track(self, track: MediaStreamTrack) -> None:
        feed = Feed(track)
        self._peer.feeds.append(feed)
        relay = MediaRelay()
        self._relays.append(relay)
        self._tracks[track.kind] = relay.subscribe(feed, buffered=False)
        self._peer.spawn(self._count(relay.subscribe(feed, buffered=True)), f"count-{track.kind}")

    async def _count(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, VideoFrame):
                self._video += 1
                self._size = (frame.width, frame.height)
                if self._first_video is None:
                    self._first_video = time.perf_counter()
            elif isinstance(frame, AudioFrame):
                self._audio += 1
                self._rate = frame.sample_rate
                if self._first_audio is None:
                    self._first_audio = time.perf_counter()
            self._progress()


def passive(answer: RTCSessionDescription) -> RTCSessionDescription:
    """``answer`` taking the DTLS server's side (``a=setup:passive``) where it took the client's.

    The offerer (the publisher, or the media node) is then the DTLS client, as
    it is the ICE controlling side: it sends its ClientHello once it has
    nominated a pair, when the answerer is ready for it. Answering ``active``
    (aiortc's choice), our ClientHello could reach Janus before its ICE was
    up: dropped, and resent by DTLS only a second later (docs/benchmarks.md,
    ``sfu_first_frame_ratio``).
    """
    sdp = answer.sdp.replace("a=setup:active\r\n", "a=setup:passive\r\n")
    return RTCSessionDescription(sdp=sdp, type=answer.type)


class Subscriber(SessionListeners):
    """Subscribes ``session`` to other participants' media.

    ``configuration`` is used for every peer connection (default: no ICE
    servers, host candidates only); with ``trickle`` the answers go without
    candidates and these follow as ``iceCandidate``, as a browser sends them.
    ``close()`` closes every subscription.

    With ``auto_subscribe`` (``True``, or a predicate on the publishing
    ``Participant``) it subscribes by itself, once started (``async with``
    or ``start()``), to every other participant that publishes, now or
    later, as LiveKit's rooms do by default; ``on_subscribed(fn)`` gets each
    such ``Subscription`` once its media flows, and ``auto_timeout`` bounds
    that wait. Whatever made a subscription, one the server ended because it
    lost its media node is made again when the publisher's stream is back,
    and ``on_restored(fn)`` gets a ``MediaRestored``.
    """

    def __init__(
        self,
        session: Session,
        *,
        configuration: RTCConfiguration | None = None,
        trickle: bool = False,
        auto_subscribe: AutoSubscribe = False,
        auto_timeout: float | None = 10.0,
    ) -> None:
        self.session = session
        self.configuration = resolve_configuration(configuration)
        self.trickle = trickle
        self.auto_subscribe = auto_subscribe
        self._subs: dict[str, Subscription] = {}
        self._early: dict[str, list[tuple[str, Any]]] = {}
        self._claiming = 0
        self._asking: set[str] = set()  # targets whose subscribe request is in flight
        self._closed = False
        self._reset_listeners: list[ResetListener] = []
        self._changed = asyncio.Event()
        self._follower = Follower(self, auto_subscribe, auto_timeout)

    @property
    def subscriptions(self) -> Mapping[str, Subscription]:
        """The subscriptions not closed yet, by exchange id (a snapshot)."""
        return MappingProxyType({x: s for x, s in self._subs.items() if not s.closed})

    def subscription_to(self, target: str) -> Subscription | None:
        """The open subscription to participant ``target``, if any."""
        for subscription in self._subs.values():
            if subscription.target == target and not subscription.closed:
                return subscription
        return None

    async def wait_for_subscription(
        self, target: str, *, timeout: float | None = None
    ) -> Subscription:
        """Wait until a subscription to ``target`` is open and its media flows; returns it.

        For subscriptions the ``Subscriber`` makes by itself (``auto_subscribe``,
        a restore); ``TimeoutError`` when none flows within ``timeout``.
        """
        async with asyncio.timeout(timeout):
            while True:
                subscription = self.subscription_to(target)
                if subscription is not None:
                    with contextlib.suppress(SubscriptionClosed, SessionErrorException):
                        return await subscription.wait_for_media()
                    continue
                self._changed.clear()
                await self._changed.wait()

    def on_reset(self, fn: ResetListener) -> ResetListener:
        """Call ``fn(MediaReset)`` (sync or async) after a state reset closed the subscriptions."""
        self._reset_listeners.append(fn)
        return fn

    def on_subscribed(self, fn: SubscribedListener) -> SubscribedListener:
        """Call ``fn(Subscription)`` (sync or async) for each subscription made by itself.

        Those of ``auto_subscribe`` and of a restore, once their media flows.
        """
        self._follower._subscribed_listeners.append(fn)
        return fn

    def on_restored(self, fn: RestoredListener) -> RestoredListener:
        """Call ``fn(MediaRestored)`` (sync or async) when a subscription the server ended is back."""
        self._follower._restored_listeners.append(fn)
        return fn

    async def start(self) -> None:
        """Start listening and, with ``auto_subscribe``, subscribe to everyone publishing."""
        if self._closed:
            raise RuntimeError("this Subscriber is closed")
        self._listen()
        if self.session.state == "joined":
            self._follower.everyone()

    async def __aenter__(self) -> Subscriber:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def subscribe(
        self, target: str, *, wait: bool = True, timeout: float | None = 10.0
    ) -> Subscription:
        """Subscribe to participant ``target``; by default, return once its media flows.

        Raises the ``SessionErrorException`` of a refused ``subscribe`` (102
        no such participant, 105 it publishes nothing, 101, 303) or, with
        ``wait``, of a failed exchange (303 at ``sdp_timeout``, 103 when the
        publisher leaves mid-exchange); every one of them has reached the
        session's ``on_session_error`` listeners first. ``TimeoutError`` when
        no frame came within ``timeout``. A subscription that failed or timed
        out is closed before this raises.

        A subscription to ``target`` that the ``Subscriber`` made, or is
        making, by itself (``auto_subscribe``, a restore after a lost media
        node) is returned rather than asked for again: an app that
        subscribes again itself after the loss gets the same one.
        """
        if self._closed:
            raise RuntimeError("this Subscriber is closed")
        shared = await self._follower.shared(target)
        if shared is not None:
            if wait:
                await shared.wait_for_media(timeout)
            return shared
        return await self._make(target, wait=wait, timeout=timeout)

    async def _make(self, target: str, *, wait: bool, timeout: float | None) -> Subscription:
        """``subscribe`` itself: ask the server, answer the offer, wait for media."""
        if self._closed:
            raise RuntimeError("this Subscriber is closed")
        self._listen()
        started_at = time.perf_counter()
        self._claiming += 1
        self._asking.add(target)
        try:
            # The session must not subscribe again by itself after a reset:
            # this Subscription owns the exchange (it closes on a reset).
            exchange_id = await self.session.subscribe(target, restore=False)
            early = self._early.pop(exchange_id, [])
        finally:
            self._asking.discard(target)
            self._claiming -= 1
            if not self._claiming:
                self._early.clear()  # events of exchanges nobody is making: not ours
        peer = Peer(
            self.session,
            exchange_id,
            target,
            self.configuration,
            trickle=self.trickle,
            on_failed=self._failed,
            on_closed=self._closed_peer,
        )
        subscription = Subscription(self, target, exchange_id, started_at, peer)
        self._subs[exchange_id] = subscription
        self._changed.set()
        for kind, event in early:
            await self._route(kind, event)
        if wait:
            try:
                await subscription.wait_for_media(timeout)
            except BaseException:
                await subscription.close()
                raise
        return subscription

    async def close(self) -> None:
        """Close every subscription (unsubscribing where needed) and stop listening."""
        self._closed = True
        await self._follower.close()
        await asyncio.gather(*(s.close() for s in list(self._subs.values())))
        self._unlisten()

    # -- routing -------------------------------------------------------------------------

    def _failed(self, peer: Peer) -> None:
        subscription = self._subs.get(peer.exchange_id)
        if subscription is not None:
            peer.spawn(subscription.close_for("connectionFailed"), "end")

    def _closed_peer(self, peer: Peer) -> None:
        subscription = self._subs.get(peer.exchange_id)
        if subscription is not None and subscription._peer is peer:
            del self._subs[peer.exchange_id]
            subscription._wake_all()
            self._follower.ended(subscription.target, peer.exchange_id, peer.close_reason or "")
            self._changed.set()

    async def _route(self, kind: str, event: Any) -> None:
        """Hand an event about an exchange to its subscription (held while one is being made)."""
        exchange_id = event.data.get("exchangeId") if kind == "error" else event.exchange_id
        subscription = self._subs.get(exchange_id) if isinstance(exchange_id, str) else None
        if subscription is None:
            if self._claiming and isinstance(exchange_id, str):
                self._early.setdefault(exchange_id, []).append((kind, event))
            return
        if kind == "offer":
            subscription._on_offer(event.sdp)
        elif kind == "candidate":
            await subscription._peer.add_candidate(event)
        elif kind == "ended":
            await subscription.close_for(event.reason)
        elif kind == "error" and event.code in _ENDS_EXCHANGE:
            await subscription._fail(event)

    # every listener this object keeps on its session, as ``_on_<event>`` methods
    _EVENTS: ClassVar[tuple[str, ...]] = (
        "sdp_offer",
        "ice_candidate",
        "subscription_ended",
        "session_error",
        "participant_left",
        "reconnected",
        "disconnected",
        "session_closed",
        "stream_published",
        "participant_joined",
        "connected",
    )

    async def _on_sdp_offer(self, event: SdpNotificationParams) -> None:
        await self._route("offer", event)

    async def _on_ice_candidate(self, event: IceCandidateNotificationParams) -> None:
        await self._route("candidate", event)

    async def _on_subscription_ended(self, event: SubscriptionEndedParams) -> None:
        await self._route("ended", event)

    async def _on_session_error(self, error: SessionError) -> None:
        if error.data and "exchangeId" in error.data:
            await self._route("error", error)

    def _on_participant_left(self, event: ParticipantLeftParams) -> None:
        self._follower.left(event.participant_id)
        for subscription in list(self._subs.values()):
            if subscription.target == event.participant_id:
                subscription._target_gone()

    def _on_stream_published(self, event: StreamPublishedParams) -> None:
        member = self.session.participants.get(event.participant_id)
        if member is not None:
            self._follower.publishing(member, known=True)

    def _on_participant_joined(self, event: ParticipantJoinedParams) -> None:
        self._follower.publishing(event.participant)

    def _on_connected(self, event: Connected) -> None:
        self._follower.everyone()

    async def _close_all(self, reason: str) -> list[str]:
        subs = list(self._subs.values())
        await asyncio.gather(*(s.close_for(reason) for s in subs))
        return [s.exchange_id for s in subs]

    async def _on_reconnected(self, event: Reconnected) -> None:
        if not event.state_reset:
            return  # resumed: the exchanges and our connections go on
        closed = await self._close_all("stateReset")
        self._follower.reset()
        logger.warning("session state reset: closed %d subscription(s)", len(closed))
        await notify(self._reset_listeners, MediaReset(tuple(closed), event.participant_id))
        self._follower.everyone()

    async def _on_disconnected(self, event: Disconnected) -> None:
        if not event.will_reconnect:
            await self._close_all("sessionEnded")

    async def _on_session_closed(self, event: SessionClosedParams) -> None:
        await self._close_all("sessionClosed")
