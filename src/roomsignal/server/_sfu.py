"""Media through a media node (PROTOCOL.md section 10): the rooms' side, pure.

A mixin of ``Rooms`` (on top of ``_exchanges``). With ``ServerConfig.media_node`` the
media requests are handled here: a publisher's ``publish`` opens one
*upstream* exchange with ``@media``, a ``subscribe`` makes the media node
offer to the subscriber, and the publisher never hears of its subscribers.
What the media node must do goes out as ``MediaOp`` effects (the transport
hands them to the adapter, ``_janus``); what it says comes back through
``media_done``, ``media_up``, ``media_candidate``, ``media_hangup``,
``media_lost`` and ``media_back``. A request whose answer needs the media
node carries a ``Ticket`` and is answered when the node has answered.
"""

from __future__ import annotations

import logging

from roomsignal.protocol import (
    EmptyResult,
    IceCandidateNotification,
    IceCandidateNotificationParams,
    IceCandidateRequest,
    Model,
    PublishRequest,
    PublishResult,
    SdpAnswerNotification,
    SdpAnswerRequest,
    SdpNotificationParams,
    SdpOfferNotification,
    SdpOfferRequest,
    SessionErrorNotification,
    SessionErrorParams,
    StreamPublishedNotification,
    StreamPublishedParams,
    Streams,
    StreamUnpublishedNotification,
    StreamUnpublishedParams,
    SubscribeRequest,
    SubscribeResult,
    SubscriptionEndedNotification,
    SubscriptionEndedParams,
    UnpublishRequest,
    UnsubscribeRequest,
)
from roomsignal.server._denials import Denial, RoomError, error_data
from roomsignal.server._exchanges import ExchangeRules
from roomsignal.server._frames import error_frame, response_frame
from roomsignal.server._logs import fields
from roomsignal.server._state import (
    IN_PROGRESS,
    Effect,
    Exchange,
    ExchangeState,
    MediaFailure,
    MediaOp,
    Member,
    Out,
    Ticket,
    Upstream,
    UpstreamState,
    others,
)

__all__ = ["MEDIA_ID", "MediaRules"]

logger = logging.getLogger("roomsignal.server")

MEDIA_ID = "@media"
"""The reserved participant id of the media node (section 10)."""

_S = ExchangeState
_U = UpstreamState


class MediaRules(ExchangeRules):
    """The media requests through a media node, and the node's answers and events."""

    _media_available = True  # set by media_lost / media_back

    def _init_media(self) -> None:
        # Through a media node, requests that need it wait for its first session.
        self._media_available = not self._config.media_node

    # --- requests -------------------------------------------------------------------

    def _need_media_node(self) -> None:
        if not self._media_available:
            self._count_media_error(Denial.MEDIA_NODE_UNREACHABLE.value.code, "unreachable")
            raise RoomError(Denial.MEDIA_NODE_UNREACHABLE, reason="unreachable")

    def _count_media_error(self, code: int, reason: str, count: int = 1) -> None:
        """Count errors sent because of the media node (``roomsignal_media_node_errors``)."""
        self.counts.bump(self.counts.media_errors, (int(code), reason), count)

    def _sfu_publish(self, out: Out, member: Member, request: PublishRequest, now: float) -> Model:
        audio, video = request.params.audio, request.params.video
        self._check_publish(member, audio, video)
        streams = Streams(audio=audio, video=video)
        upstream = member.upstream
        if upstream is not None and upstream.streams == streams:
            assert member.stream_id is not None
            return PublishResult(stream_id=member.stream_id, exchange_id=upstream.id)
        self._need_media_node()
        if upstream is not None:
            self._end_upstream(out, upstream, "republished", unpublish=False)
        if member.stream_id is None:
            member.stream_id = self._new_id("st", {})
        upstream = Upstream(
            id=self._new_id("x", self._exchanges),
            member=member,
            streams=streams,
            state=_U.AWAITING_OFFER,
            deadline=now + self._config.sdp_timeout,
        )
        member.upstream = upstream
        self._upstreams[upstream.id] = upstream
        self.counts.bump(self.counts.media_opened, "upstream")
        assert upstream.deadline is not None
        self._schedule(upstream.deadline, "upstream", upstream.id)
        logger.info("participant %s opens upstream %s", member.id, upstream.id)
        return PublishResult(stream_id=member.stream_id, exchange_id=upstream.id)

    def _sfu_unpublish(
        self, out: Out, member: Member, request: UnpublishRequest, now: float
    ) -> Model:
        if member.upstream is None:
            raise RoomError(Denial.NOT_PUBLISHING)
        self._end_upstream(out, member.upstream, "unpublished")
        member.stream_id = None
        return EmptyResult()

    def _sfu_subscribe(
        self, out: Out, member: Member, request: SubscribeRequest, now: float
    ) -> Model | None:
        target = self._target(member, request.params.target, live=False)
        upstream = target.upstream
        if upstream is None:
            raise RoomError(Denial.TARGET_NOT_PUBLISHING, participant_id=target.id)
        session = member.session
        self._check_not_subscribed(member, target)
        self._need_media_node()
        exchange = Exchange(
            id=self._new_id("x", self._exchanges),
            publisher=target,
            subscriber=member,
            state=_S.AWAITING_OFFER,
            deadline=now + self._config.sdp_timeout,
            upstream=upstream,
        )
        self._exchanges[exchange.id] = exchange
        session.pairs[(target.id, member.id)] = exchange
        member.exchanges[exchange.id] = exchange
        upstream.subscriptions[exchange.id] = exchange
        self.counts.bump(self.counts.media_opened, "subscription")
        assert exchange.deadline is not None
        self._schedule(exchange.deadline, "sdp", exchange.id)
        if upstream.state is _U.UP:
            ticket = member.ticket(request.id, "subscribe")
            out.effects.append(self._subscribe_op(exchange, ticket))
            return None  # answered with the media node's offer
        logger.info("subscription %s held until upstream %s is up", exchange.id, upstream.id)
        return SubscribeResult(exchange_id=exchange.id)

    @staticmethod
    def _subscribe_op(exchange: Exchange, ticket: Ticket | None) -> MediaOp:
        assert exchange.upstream is not None
        return MediaOp(
            "subscribe",
            exchange.id,
            exchange.subscriber.session.id,
            feed=exchange.upstream.id,
            ticket=ticket,
        )

    def _sfu_unsubscribe(
        self, out: Out, member: Member, request: UnsubscribeRequest, now: float
    ) -> Model:
        target = self._target(member, request.params.target, live=False)
        exchange = member.session.pairs.get((target.id, member.id))
        if exchange is not None:
            self._end_subscription(out, exchange)
        return EmptyResult()

    def _sfu_sdp_offer(
        self, out: Out, member: Member, request: SdpOfferRequest, now: float
    ) -> Model | None:
        params = request.params
        upstream = member.upstream
        if upstream is None or upstream.id != params.exchange_id:
            # No offer of the publisher's goes to a subscriber through a media node.
            self._exchange_of(member, params.exchange_id, "publisher")
            raise RoomError(Denial.UNKNOWN_EXCHANGE, exchange_id=params.exchange_id)
        if upstream.state is not _U.AWAITING_OFFER:
            raise RoomError(
                Denial.EXCHANGE_IN_PROGRESS, participant_id=MEDIA_ID, exchange_id=upstream.id
            )
        self._need_media_node()
        upstream.state = _U.NEGOTIATING
        upstream.deadline = None
        ticket = member.ticket(request.id, "sdpOffer")
        out.effects.append(
            MediaOp("publish", upstream.id, member.session.id, sdp=params.sdp, ticket=ticket)
        )
        out.effects.extend(upstream.held)
        upstream.held = []
        return None

    def _sfu_sdp_answer(
        self, out: Out, member: Member, request: SdpAnswerRequest, now: float
    ) -> Model | None:
        params = request.params
        exchange = self._exchange_of(member, params.exchange_id, "subscriber")
        if exchange.state is not _S.AWAITING_ANSWER or exchange.deadline is None:
            raise RoomError(
                Denial.NO_OFFER, participant_id=exchange.publisher.id, exchange_id=exchange.id
            )
        self._need_media_node()
        exchange.deadline = None  # answered in time; the media node's verdict comes next
        ticket = member.ticket(request.id, "sdpAnswer")
        out.effects.append(
            MediaOp("start", exchange.id, member.session.id, sdp=params.sdp, ticket=ticket)
        )
        return None

    def _sfu_ice_candidate(
        self, out: Out, member: Member, request: IceCandidateRequest, now: float
    ) -> Model:
        params = request.params
        upstream = member.upstream
        if upstream is not None and upstream.id == params.exchange_id:
            key = upstream.id
        else:
            key = self._exchange_of(member, params.exchange_id, "either").id
        self._need_media_node()
        op = MediaOp(
            "trickle",
            key,
            member.session.id,
            candidate=params.candidate,
            sdp_mid=params.sdp_mid,
            sdp_m_line_index=params.sdp_m_line_index,
        )
        if upstream is not None and key == upstream.id and upstream.state is _U.AWAITING_OFFER:
            if len(upstream.held) >= self._config.ice_queue_limit:
                raise RoomError(Denial.ICE_QUEUE_FULL, participant_id=MEDIA_ID, exchange_id=key)
            upstream.held.append(op)
        else:
            out.effects.append(op)
        return EmptyResult()

    # --- endings ---------------------------------------------------------------------

    def _end_subscription(
        self, out: Out, exchange: Exchange, reason: str | None = None, *, hangup: bool = True
    ) -> None:
        """End a subscription through the media node; ``reason`` tells the subscriber."""
        self._end_exchange(exchange)
        self._changed(exchange.subscriber.session.id)
        if exchange.upstream is not None:
            exchange.upstream.subscriptions.pop(exchange.id, None)
        if hangup:
            out.effects.append(MediaOp("hangup", exchange.id, exchange.subscriber.session.id))
        if reason is not None:
            out.notify(
                [exchange.subscriber],
                SubscriptionEndedNotification(
                    params=SubscriptionEndedParams(
                        seq=0,
                        exchange_id=exchange.id,
                        participant_id=exchange.publisher.id,
                        reason=reason,
                    )
                ),
            )

    def _end_upstream(
        self,
        out: Out,
        upstream: Upstream,
        reason: str | None,
        *,
        unpublish: bool = True,
        hangup: bool = True,
    ) -> None:
        """End an upstream and every subscription it feeds (``subscriptionEnded`` ``reason``).

        ``unpublish``: the publisher counts as publishing nothing (others get
        ``streamUnpublished`` if they heard it was published).
        """
        member = upstream.member
        for exchange in list(upstream.subscriptions.values()):
            self._end_subscription(out, exchange, reason, hangup=hangup)
        self._upstreams.pop(upstream.id, None)
        self._changed(member.session.id)
        upstream.deadline = None
        if member.upstream is upstream:
            member.upstream = None
        if hangup:
            out.effects.append(MediaOp("hangup", upstream.id, member.session.id))
        if unpublish and member.streams is not None:
            member.set_streams(None)
            if member.session.members.get(member.id) is member:
                out.notify(
                    others(member.session, member),
                    StreamUnpublishedNotification(
                        params=StreamUnpublishedParams(seq=0, participant_id=member.id)
                    ),
                )

    def _sfu_remove(self, out: Out, member: Member) -> None:
        """A member leaves: its subscriptions and its upstream end (others as in section 7)."""
        for exchange in [x for x in member.exchanges.values() if x.upstream is not None]:
            self._end_subscription(out, exchange)
        upstream = member.upstream
        if upstream is None:
            return
        for exchange in list(upstream.subscriptions.values()):
            in_progress = exchange.state in IN_PROGRESS
            self._end_subscription(out, exchange)
            exchange.subscriber.tombstone(exchange.id, Denial.PEER_LEFT, member.id)
            if in_progress:
                self._session_error(
                    out,
                    exchange.subscriber,
                    Denial.PEER_LEFT,
                    participant_id=member.id,
                    exchange_id=exchange.id,
                )
        self._end_upstream(out, upstream, "left", unpublish=False)

    def _end_media(self, out: Out, member: Member) -> None:
        for exchange in [x for x in member.exchanges.values() if x.upstream is not None]:
            self._end_subscription(out, exchange)
        if member.upstream is not None:
            self._end_upstream(out, member.upstream, None, unpublish=False)

    def _sfu_time_out(self, out: Out, exchange: Exchange) -> None:
        """A subscription not offered, answered, or connected within ``sdp_timeout``.

        Its offer and answer are due within ``sdp_timeout`` of ``subscribe``
        (or of its upstream coming up); once the media node took the answer,
        the subscription must connect (the media node says ``webrtcup``)
        within ``sdp_timeout`` of that, else a peer connection that never
        does ICE would hold it until the media node gives up on it. The
        subscriber gets 303; an answered one then ``subscriptionEnded``
        (reason ``connectTimeout``), and the media node's handle is hung up.
        """
        subscriber = exchange.subscriber
        answered = exchange.state is _S.ESTABLISHED
        denial = Denial.SUBSCRIPTION_CONNECT_TIMEOUT if answered else Denial.SDP_TIMEOUT
        subscriber.tombstone(exchange.id, denial, exchange.publisher.id)
        self._session_error(
            out,
            subscriber,
            denial,
            participant_id=exchange.publisher.id,
            exchange_id=exchange.id,
        )
        self._end_subscription(out, exchange, "connectTimeout" if answered else None)
        logger.info("subscription %s timed out (%s)", exchange.id, denial.value.message)

    def _upstream_time_out(self, out: Out, upstream: Upstream) -> None:
        """An upstream not offered, or not connected, within ``sdp_timeout``.

        The publisher owes its offer within ``sdp_timeout`` of ``publish``;
        once the media node answered it, the upstream must connect (the media
        node says ``webrtcup``) within ``sdp_timeout`` of that answer, else a
        peer connection that never does ICE would hold it open until the
        media node gives up on it. Either way the upstream ends (its held
        subscriptions with ``unpublished``) and the publisher gets 303.
        """
        member = upstream.member
        denial = (
            Denial.UPSTREAM_CONNECT_TIMEOUT
            if upstream.state is _U.CONNECTING
            else Denial.UPSTREAM_TIMEOUT
        )
        self._end_upstream(out, upstream, "unpublished")
        member.stream_id = None
        member.tombstone(upstream.id, denial, MEDIA_ID)
        self._session_error(out, member, denial, participant_id=MEDIA_ID, exchange_id=upstream.id)
        logger.info("upstream %s timed out (%s)", upstream.id, upstream.state.value)

    # --- what the media node says -------------------------------------------------

    def _answer(
        self, out: Out, ticket: Ticket | None, result: Model | None, failure: RoomError | None
    ) -> None:
        """Answer a request that waited for the media node (if its caller is still here)."""
        if ticket is None:
            return
        member = self._members.get(ticket.participant_id)
        if member is None:
            return
        # Journaled before it is written (the cluster's commit gate), as any answer.
        self._changed(member.session.id)
        if member.waiting is not None:
            member.waiting.discard(ticket.request_id)
        if failure is not None:
            data = error_data(
                failure.code,
                ticket.method,
                failure.participant_id or member.id,
                failure.exchange_id,
                failure.extra,
            )
            frame = error_frame(ticket.request_id, failure.code, failure.message, data)
            logger.info(
                "%s refused with %s: %s",
                ticket.method,
                failure.code,
                failure.message,
                extra=fields(
                    member.session.id, member.id, target=failure.participant_id, code=failure.code
                ),
            )
            self.counts.error(failure.code, "answer")
        else:
            assert result is not None
            frame = response_frame(ticket.request_id, result)
        # Kept like any answer (section 8): a caller that lost its connection
        # meanwhile gets it when it sends the request again after its resume.
        self._keep(member, ticket.request_id, frame, result)
        if member.conn is not None:
            out.send(member.conn, frame)

    def media_done(
        self,
        op: MediaOp,
        sdp: str | None,
        failure: MediaFailure | None,
        now: float,
    ) -> list[Effect]:
        """The media node finished ``op``: its SDP (offer or answer), or why it failed."""
        out = Out()
        error = None
        if failure is not None:
            code = failure.denial.value.code
            reason = failure.extra.get("reason")
            if not isinstance(reason, str):  # 802, or 303 on an SDP the node refused
                reason = "refused" if code == Denial.MEDIA_REFUSED.value.code else "response"
            self._count_media_error(code, reason)
            error = RoomError(
                failure.denial,
                message=failure.message,
                participant_id=MEDIA_ID,
                exchange_id=op.key,
                **failure.extra,
            )
        if op.kind == "publish":
            self._publish_done(out, op, sdp, error, now)
        elif op.kind == "subscribe":
            self._subscribe_done(out, op, sdp, error)
        elif op.kind == "start":
            exchange = self._exchanges.get(op.key)
            if error is None and exchange is not None:
                exchange.state = _S.ESTABLISHED
                if not exchange.up:  # it must connect within sdp_timeout (``media_up``)
                    exchange.deadline = now + self._config.sdp_timeout
                    self._schedule(exchange.deadline, "sdp", exchange.id)
                self._answer(out, op.ticket, EmptyResult(), None)
            elif error is not None:
                self._answer(out, op.ticket, None, error)
                if exchange is not None:
                    self._end_subscription(out, exchange, "mediaNodeError")
            else:
                self._answer(out, op.ticket, EmptyResult(), None)
        elif failure is not None:
            logger.info("media node %s on %s failed: %s", op.kind, op.key, error)
        return out.effects

    def _publish_done(
        self, out: Out, op: MediaOp, sdp: str | None, error: RoomError | None, now: float
    ) -> None:
        upstream = self._upstreams.get(op.key)
        if error is not None or sdp is None:
            if error is None:
                error = RoomError(Denial.MEDIA_NODE_RESPONSE, exchange_id=op.key)
            self._answer(out, op.ticket, None, error)
            if upstream is not None:
                member = upstream.member
                self._end_upstream(out, upstream, "unpublished")
                member.stream_id = None
            return
        if upstream is None:
            self._answer(out, op.ticket, EmptyResult(), None)
            return
        upstream.state = _U.CONNECTING
        upstream.deadline = now + self._config.sdp_timeout  # to connect (``media_up``)
        self._schedule(upstream.deadline, "upstream", upstream.id)
        member = upstream.member
        self._changed(member.session.id)  # its sdpAnswer is numbered below
        self._answer(out, op.ticket, EmptyResult(), None)
        out.notify(
            [member],
            SdpAnswerNotification(
                params=SdpNotificationParams(
                    seq=0, exchange_id=upstream.id, from_=MEDIA_ID, sdp=sdp
                )
            ),
        )

    def _subscribe_done(
        self, out: Out, op: MediaOp, sdp: str | None, error: RoomError | None
    ) -> None:
        exchange = self._exchanges.get(op.key)
        if exchange is None:
            if error is None:  # ended meanwhile; the node's handle goes
                out.effects.append(MediaOp("hangup", op.key, op.room))
                error = self._ended_error(op)
            self._answer(out, op.ticket, None, error)
            return
        if error is not None or sdp is None:
            if error is None:
                error = RoomError(Denial.MEDIA_NODE_RESPONSE, exchange_id=op.key)
            if op.ticket is not None:
                self._answer(out, op.ticket, None, error)
                self._end_subscription(out, exchange)
            else:
                subscriber = exchange.subscriber
                self._end_subscription(out, exchange)
                self.counts.error(error.code, "push")
                out.notify([subscriber], self._error_notification(error))
            return
        exchange.state = _S.AWAITING_ANSWER
        self._changed(exchange.subscriber.session.id)  # its sdpOffer is numbered below
        self._answer(out, op.ticket, SubscribeResult(exchange_id=exchange.id), None)
        out.notify(
            [exchange.subscriber],
            SdpOfferNotification(
                params=SdpNotificationParams(
                    seq=0, exchange_id=exchange.id, from_=exchange.publisher.id, sdp=sdp
                )
            ),
        )

    def _ended_error(self, op: MediaOp) -> RoomError:
        """Why a subscription ended before its offer was made, to answer its ``subscribe``.

        Its tombstone's refusal (the publisher left: 103; timed out: 303),
        else 101: no exchange with that id is open any more.
        """
        ticket = op.ticket
        member = self._members.get(ticket.participant_id) if ticket is not None else None
        ended = member.ended.get(op.key) if member is not None else None
        if ended is not None:
            return RoomError(ended[0], participant_id=ended[1], exchange_id=op.key)
        return RoomError(Denial.UNKNOWN_EXCHANGE, exchange_id=op.key)

    @staticmethod
    def _error_notification(error: RoomError) -> SessionErrorNotification:
        return SessionErrorNotification(
            params=SessionErrorParams(
                seq=0, code=error.code, message=error.message, data=error.data()
            )
        )

    def media_up(self, key: str, now: float) -> list[Effect]:
        """The media node says the media of exchange ``key`` flows (``webrtcup``)."""
        out = Out()
        upstream = self._upstreams.get(key)
        if upstream is None:
            exchange = self._exchanges.get(key)
            if exchange is not None and exchange.upstream is not None:
                exchange.up = True  # a subscription: connected in time
                if exchange.state is _S.ESTABLISHED:
                    exchange.deadline = None
            return out.effects
        if upstream.state is _U.UP:
            return out.effects
        upstream.state = _U.UP
        upstream.deadline = None
        member = upstream.member
        streams = upstream.streams
        member.set_streams(streams)
        self._changed(member.session.id)
        logger.info("upstream %s of %s is up", upstream.id, member.id)
        out.notify(
            others(member.session, member),
            StreamPublishedNotification(
                params=StreamPublishedParams(
                    seq=0, participant_id=member.id, audio=streams.audio, video=streams.video
                )
            ),
        )
        for exchange in upstream.subscriptions.values():
            if exchange.state is _S.AWAITING_OFFER:
                out.effects.append(self._subscribe_op(exchange, None))
        return out.effects

    def media_candidate(
        self, key: str, candidate: str, sdp_mid: str | None, sdp_m_line_index: int | None
    ) -> list[Effect]:
        """A candidate of the media node's on exchange ``key`` (``""`` ends them)."""
        out = Out()
        upstream = self._upstreams.get(key)
        exchange = self._exchanges.get(key)
        if upstream is not None:
            recipient, sender = upstream.member, MEDIA_ID
        elif exchange is not None and exchange.upstream is not None:
            recipient, sender = exchange.subscriber, exchange.publisher.id
        else:
            return out.effects
        self._changed(recipient.session.id)  # numbered: journaled before it is written
        out.notify(
            [recipient],
            IceCandidateNotification(
                params=IceCandidateNotificationParams(
                    seq=0,
                    exchange_id=key,
                    from_=sender,
                    candidate=candidate,
                    sdp_mid=sdp_mid,
                    sdp_m_line_index=sdp_m_line_index,
                )
            ),
        )
        return out.effects

    def media_hangup(self, key: str, now: float) -> list[Effect]:
        """The media node ended exchange ``key``'s media on its own (a hangup)."""
        out = Out()
        upstream = self._upstreams.get(key)
        if upstream is not None:
            member = upstream.member
            self._end_upstream(out, upstream, "unpublished")
            member.stream_id = None
            return out.effects
        exchange = self._exchanges.get(key)
        if exchange is not None and exchange.upstream is not None:
            self._end_subscription(out, exchange, "mediaNodeHangup")
        return out.effects

    def media_lost(self, now: float) -> list[Effect]:
        """The server lost its media node: every exchange through it ends (section 10)."""
        out = Out()
        self._media_available = False
        self.counts.media_losses += 1
        touched: dict[str, list[tuple[str, str]]] = {}  # member id -> (exchange, publisher)
        members: dict[str, Member] = {}
        for upstream in list(self._upstreams.values()):
            member = upstream.member
            members[member.id] = member
            touched.setdefault(member.id, []).append((upstream.id, member.id))
            for exchange in upstream.subscriptions.values():
                subscriber = exchange.subscriber
                members[subscriber.id] = subscriber
                touched.setdefault(subscriber.id, []).append((exchange.id, member.id))
        for member_id, ended in touched.items():
            self._tell_media_lost(out, members[member_id], ended)
        for upstream in list(self._upstreams.values()):
            self._end_upstream(out, upstream, None, hangup=False)
            upstream.member.stream_id = None
        logger.warning("media node lost: %d participants told", len(touched))
        return out.effects

    def _tell_media_lost(self, out: Out, member: Member, ended: list[tuple[str, str]]) -> None:
        """801 ``mediaNodeLost`` to ``member``, then ``subscriptionEnded`` per exchange.

        ``ended``: its exchanges through the lost media node, ``(exchange id,
        publisher id)`` pairs, its upstream included (section 10).
        """
        self._session_error(out, member, Denial.MEDIA_NODE_LOST, reason="mediaNodeLost")
        self._count_media_error(Denial.MEDIA_NODE_LOST.value.code, "mediaNodeLost")
        for exchange_id, publisher_id in ended:
            out.notify(
                [member],
                SubscriptionEndedNotification(
                    params=SubscriptionEndedParams(
                        seq=0,
                        exchange_id=exchange_id,
                        participant_id=publisher_id,
                        reason="mediaNodeLost",
                    )
                ),
            )

    def media_moved(self, session_id: str, media: dict[str, list[tuple[str, str]]]) -> list[Effect]:
        """Session ``session_id`` was taken over from another node (docs/scaling.md).

        Its media was on the old home's media node, which this node cannot
        reach: as for a lost media node (section 10), each member with an
        exchange through it gets ``sessionError`` 801 ``mediaNodeLost``, then
        ``subscriptionEnded`` (reason ``mediaNodeLost``) per exchange, the
        upstream included; publishers count as not publishing (others get
        ``streamUnpublished``). ``media`` is what the old home journaled: each
        member's ``(exchange id, publisher id)`` pairs.
        """
        out = Out()
        session = self._sessions.get(session_id)
        if session is None:
            return out.effects
        told = 0
        for member in list(session.members.values()):
            ended = media.get(member.id, [])
            if not ended and member.streams is None:
                continue
            told += 1
            self._tell_media_lost(out, member, ended)
        for member in list(session.members.values()):
            if member.streams is None and member.stream_id is None:
                continue
            published = member.streams is not None
            member.set_streams(None)
            member.stream_id = None
            if published:
                out.notify(
                    others(session, member),
                    StreamUnpublishedNotification(
                        params=StreamUnpublishedParams(seq=0, participant_id=member.id)
                    ),
                )
        if told:
            logger.warning(
                "session %s taken over: its media was on the old home's media node "
                "(%d participants told)",
                session_id,
                told,
            )
        return out.effects

    def media_released(self, session_id: str) -> list[Effect]:
        """This node no longer homes session ``session_id`` (its lease went to another node).

        Every exchange the session has through this node's media node is
        hung up, quietly: the new home tells the members (``media_moved``),
        and this node's media node stops carrying media nobody here serves.
        """
        out = Out()
        session = self._sessions.get(session_id)
        for member in list(session.members.values()) if session is not None else ():
            self._end_media(out, member)
        return out.effects

    def media_back(self, now: float) -> list[Effect]:
        """The media node answers again: requests that need it are served."""
        self._media_available = True
        return []
