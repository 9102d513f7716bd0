"""``Publisher``: publish aiortc tracks and answer every subscriber by itself.

Through a media node (PROTOCOL.md section 10: ``publish`` answers an
``exchangeId``) it opens one upstream peer connection to ``@media``,
whatever the number of subscribers, and hears of none of them. Peer to
peer, each ``subscribeRequest`` gets its own ``RTCPeerConnection`` with send-only
transceivers, fed through one ``MediaRelay`` per publisher, so that one source
feeds every subscriber. The publisher offers (candidates in its SDP, or
trickled with ``trickle=True``), applies the answer and the subscriber's
candidates, and closes that connection when the exchange ends:
``subscriptionEnded``, a 303 or 103 about it, the subscriber's leave,
``unpublish``, a state reset, or ``close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType, TracebackType
from typing import ClassVar

from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection
from aiortc.contrib.media import MediaRelay

from roomsignal.catalog import ErrorCode
from roomsignal.client import Disconnected, Reconnected, Session
from roomsignal.errors import SessionError, SessionErrorException
from roomsignal.media._node import Republisher, RestoredListener
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
    ParticipantLeftParams,
    SdpNotificationParams,
    SessionClosedParams,
    SubscribeRequestParams,
    SubscriptionEndedParams,
)

__all__ = ["Publisher"]

logger = logging.getLogger("roomsignal.media")

MEDIA_NODE = "@media"  # the media node's participant id (PROTOCOL.md section 10)
_ENDS_EXCHANGE = {ErrorCode.MEDIA_ENDPOINT_ERROR_CODE, ErrorCode.USER_CLOSED_ERROR_CODE}


class Publisher(SessionListeners):
    """Publishes ``video`` and/or ``audio`` on ``session`` and serves every subscriber.

    ``async with Publisher(session, video=track) as publisher:`` publishes on
    entry and unpublishes and closes on exit. ``configuration`` is used for
    every peer connection (default: no ICE servers, host candidates only).
    With ``trickle``, candidates go out as ``iceCandidate`` instead of in the
    SDP. With ``stop_tracks`` (the default) ``close()`` stops the source
    tracks too (a ``MediaPlayer``'s thread ends with its tracks). After a
    state reset, ``republish`` publishes again on the new seat.
    """

    def __init__(
        self,
        session: Session,
        *,
        video: MediaStreamTrack | None = None,
        audio: MediaStreamTrack | None = None,
        configuration: RTCConfiguration | None = None,
        trickle: bool = False,
        stop_tracks: bool = True,
        republish: bool = True,
    ) -> None:
        if video is None and audio is None:
            raise ValueError("give a video track, an audio track, or both")
        if video is not None and video.kind != "video":
            raise ValueError(f"video must be a video track, not {video.kind!r}")
        if audio is not None and audio.kind != "audio":
            raise ValueError(f"audio must be an audio track, not {audio.kind!r}")
        self.session = session
        self.configuration = resolve_configuration(configuration)
        self.trickle = trickle
        self.stop_tracks = stop_tracks
        self.republish = republish
        self._tracks = [t for t in (audio, video) if t is not None]
        self._feeds = [Feed(t) for t in self._tracks]
        self._relay = MediaRelay()
        self._peers: dict[str, Peer] = {}
        self._publishing = False
        self._closed = False
        self._reset_listeners: list[ResetListener] = []
        self._changed = asyncio.Event()
        self._upstream: str | None = None  # through a media node
        self.stream_id: str | None = None
        self._republisher = Republisher(self)  # publishes again after a lost media node

    # -- what it holds ---------------------------------------------------------------

    @property
    def connections(self) -> Mapping[str, RTCPeerConnection]:
        """The open peer connections, by exchange id (a snapshot)."""
        return MappingProxyType({x: p.pc for x, p in self._peers.items() if not p.closed})

    @property
    def subscribers(self) -> Mapping[str, str]:
        """The subscriber's participant id of each open exchange (a snapshot)."""
        return MappingProxyType({x: p.remote_id for x, p in self._peers.items() if not p.closed})

    @property
    def publishing(self) -> bool:
        return self._publishing

    def on_reset(self, fn: ResetListener) -> ResetListener:
        """Call ``fn(MediaReset)`` (sync or async) after a state reset closed the connections."""
        self._reset_listeners.append(fn)
        return fn

    def on_restored(self, fn: RestoredListener) -> RestoredListener:
        """Call ``fn(MediaRestored)`` (sync or async) once published again after a lost media node."""
        self._republisher.listeners.append(fn)
        return fn

    async def wait_for_connected(self, count: int = 1, *, timeout: float | None = None) -> None:
        """Wait until at least ``count`` peer connections are connected (or ``TimeoutError``)."""
        await self._wait(
            lambda: sum(p.pc.connectionState == "connected" for p in self._peers.values()) >= count,
            timeout,
        )

    async def wait_for_exchanges(self, count: int, *, timeout: float | None = None) -> None:
        """Wait until exactly ``count`` exchanges are open (0: every connection closed)."""
        await self._wait(lambda: len(self._peers) == count, timeout)

    async def _wait(self, done: Callable[[], bool], timeout: float | None) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    # -- life cycle ------------------------------------------------------------------

    async def __aenter__(self) -> Publisher:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> str:
        """Publish (``session.publish``) and start answering subscribers; returns the stream id.

        Raises the ``SessionErrorException`` of a refused ``publish`` (105,
        106, 107, 108), which has reached the session's listeners first.
        """
        if self._closed:
            raise RuntimeError("this Publisher is closed")
        self._listen()
        result = await self.session.publish_result(
            audio=any(t.kind == "audio" for t in self._tracks),
            video=any(t.kind == "video" for t in self._tracks),
            restore=False,  # the Publisher restores its own publish (``republish``)
        )
        self.stream_id = result.stream_id
        self._publishing = True
        if result.exchange_id is not None:
            self._open_upstream(result.exchange_id)
        return self.stream_id

    @property
    def upstream_exchange_id(self) -> str | None:
        """Through a media node, the open upstream exchange; None peer to peer."""
        upstream = self._upstream
        return upstream if upstream is not None and upstream in self._peers else None

    def _open_upstream(self, exchange_id: str) -> None:
        """Through a media node: one peer connection to ``@media``, whatever the subscribers."""
        self._upstream = exchange_id
        if exchange_id in self._peers:
            return  # published again with the same flags: the same upstream
        self._add_peer(exchange_id, MEDIA_NODE)

    async def unpublish(self) -> None:
        """Stop publishing; every subscriber's connection closes (they get ``subscriptionEnded``).

        A publish again after a lost media node still in progress stops
        first; an upstream it opened meanwhile is unpublished too (then a
        server that never got its ``publish`` answering 105 is no error).
        """
        self._publishing = False
        restoring = self._republisher.restoring
        await self._republisher.stop()
        try:
            await self.session.unpublish()
        except SessionErrorException as exc:
            if not (restoring and exc.code == ErrorCode.USER_NOT_STREAMING_ERROR_CODE):
                raise
        finally:
            await self._close_all("unpublished")

    async def close(self) -> None:
        """Unpublish (if the session is still joined), close every connection, end the sources.

        Idempotent; safe in every state of the session.
        """
        if self._closed:
            return
        self._closed = True
        self._unlisten()
        await self._republisher.close()
        if self._publishing and self.session.state == "joined":
            with contextlib.suppress(SessionErrorException, TimeoutError):
                await self.session.unpublish()
        self._publishing = False
        await self._close_all("closed")
        for feed in self._feeds:
            await feed.end()
        if self.stop_tracks:
            for track in self._tracks:
                track.stop()

    async def _close_all(self, reason: str) -> list[str]:
        peers = list(self._peers.values())
        await asyncio.gather(*(p.close(reason) for p in peers))
        return [p.exchange_id for p in peers]

    async def _end(self, exchange_id: str, reason: str) -> None:
        peer = self._peers.get(exchange_id)
        if peer is not None:
            await peer.close(reason)

    def _closed_peer(self, peer: Peer) -> None:
        # A peer stays listed until its close is complete, so close() awaits it.
        if self._peers.get(peer.exchange_id) is peer:
            del self._peers[peer.exchange_id]
        self._changed.set()

    # -- listeners -------------------------------------------------------------------

    # every listener this object keeps on its session, as ``_on_<event>`` methods
    _EVENTS: ClassVar[tuple[str, ...]] = (
        "subscribe_request",
        "sdp_answer",
        "ice_candidate",
        "subscription_ended",
        "session_error",
        "participant_left",
        "reconnected",
        "disconnected",
        "session_closed",
    )

    def _on_subscribe_request(self, event: SubscribeRequestParams) -> None:
        if not self._publishing or self._closed or event.exchange_id in self._peers:
            return
        self._add_peer(event.exchange_id, event.subscriber_id)

    def _add_peer(self, exchange_id: str, remote_id: str) -> None:
        peer = Peer(
            self.session,
            exchange_id,
            remote_id,
            self.configuration,
            trickle=self.trickle,
            on_failed=self._failed,
            on_closed=self._closed_peer,
        )
        peer.pc.on("connectionstatechange", self._changed.set)
        for feed in self._feeds:
            peer.pc.addTransceiver(
                self._relay.subscribe(feed, buffered=False), direction="sendonly"
            )
        self._peers[exchange_id] = peer
        self._changed.set()
        peer.spawn(self._offer(peer), "offer")

    async def _offer(self, peer: Peer) -> None:
        try:
            await peer.pc.setLocalDescription(await peer.pc.createOffer())
            await peer.send_local("offer")
        except SessionErrorException as exc:  # 103, 303 (the exchange is over), 102 ...
            logger.info("exchange %s: offer refused: %s", peer.exchange_id, exc)
            await peer.close(str(exc.code))  # (this task is cancelled by the close)
        except Exception:
            if not peer.closed:
                logger.exception("exchange %s: could not make the offer", peer.exchange_id)
                await peer.close("failed")

    def _failed(self, peer: Peer) -> None:
        peer.spawn(peer.close("connectionFailed"), "end")

    async def _on_sdp_answer(self, event: SdpNotificationParams) -> None:
        peer = self._peers.get(event.exchange_id)
        if peer is None:
            return
        try:
            await peer.set_remote(event.sdp, "answer")
        except Exception as exc:
            logger.warning(
                "exchange %s: bad answer from %s: %r", event.exchange_id, event.from_, exc
            )
            await self._end(event.exchange_id, "badAnswer")

    async def _on_ice_candidate(self, event: IceCandidateNotificationParams) -> None:
        peer = self._peers.get(event.exchange_id)
        if peer is not None:
            await peer.add_candidate(event)

    async def _on_subscription_ended(self, event: SubscriptionEndedParams) -> None:
        await self._end(event.exchange_id, event.reason)

    async def _on_session_error(self, error: SessionError) -> None:
        exchange_id = error.data.get("exchangeId") if error.data else None
        if isinstance(exchange_id, str) and error.code in _ENDS_EXCHANGE:
            await self._end(exchange_id, str(error.code))

    async def _on_participant_left(self, event: ParticipantLeftParams) -> None:
        for exchange_id, peer in list(self._peers.items()):
            if peer.remote_id == event.participant_id:
                await self._end(exchange_id, "left")

    async def _on_reconnected(self, event: Reconnected) -> None:
        if not event.state_reset:
            return  # resumed: the seat, its exchanges and our connections go on
        closed = await self._close_all("stateReset")
        republished = False
        logger.warning(
            "session state reset: closed %d peer connection(s) of the publisher", len(closed)
        )
        if self._publishing and self.republish and not self._closed:
            try:
                await self.start()
                republished = True
            except SessionErrorException as exc:
                self._publishing = False
                logger.warning("could not publish again after the reset: %s", exc)
        elif not self.republish:
            self._publishing = False
        await notify(
            self._reset_listeners,
            MediaReset(tuple(closed), event.participant_id, republished=republished),
        )

    async def _on_disconnected(self, event: Disconnected) -> None:
        if not event.will_reconnect:
            self._publishing = False
            await self._close_all("sessionEnded")

    async def _on_session_closed(self, event: SessionClosedParams) -> None:
        self._publishing = False
        await self._close_all("sessionClosed")
