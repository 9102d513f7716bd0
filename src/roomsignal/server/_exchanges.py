"""Subscriptions and the SDP exchange: subscribe, offer, answer, ICE, timeouts.

A mixin of ``Rooms`` (see ``_core``); the exchange life cycle is the
transition table in ``_state``. Pure: no sockets, the clock is passed in.
"""

from __future__ import annotations

import logging

from roomsignal.protocol import (
    EmptyResult,
    IceCandidateNotification,
    IceCandidateNotificationParams,
    IceCandidateRequest,
    Model,
    SdpAnswerNotification,
    SdpAnswerRequest,
    SdpNotificationParams,
    SdpOfferNotification,
    SdpOfferRequest,
    SubscribeRequest,
    SubscribeRequestNotification,
    SubscribeRequestParams,
    SubscribeResult,
    SubscriptionEndedNotification,
    SubscriptionEndedParams,
    UnsubscribeRequest,
)
from roomsignal.server._core import RoomsCore
from roomsignal.server._denials import (
    Denial,
    RoomError,
)
from roomsignal.server._limits import text_size, too_large
from roomsignal.server._state import (
    EXCHANGE_DENIALS,
    EXCHANGE_TRANSITIONS,
    Exchange,
    ExchangeEvent,
    ExchangeState,
    Member,
    Out,
)

__all__ = ["ExchangeRules"]

logger = logging.getLogger("roomsignal.server")

_S = ExchangeState


class ExchangeRules(RoomsCore):
    """The handlers of ``subscribe``, ``unsubscribe``, ``sdpOffer``, ``sdpAnswer``, ``iceCandidate``."""

    @staticmethod
    def _check_not_subscribed(member: Member, target: Member) -> None:
        """Refuse a second exchange of one pair: 303, established or in progress."""
        existing = member.session.pairs.get((target.id, member.id))
        if existing is not None:
            denial = (
                Denial.ALREADY_SUBSCRIBED
                if existing.state is _S.ESTABLISHED
                else Denial.EXCHANGE_IN_PROGRESS
            )
            raise RoomError(denial, participant_id=target.id, exchange_id=existing.id)

    def _subscribe(self, out: Out, member: Member, request: SubscribeRequest, now: float) -> Model:
        target = self._target(member, request.params.target)
        if target.streams is None:
            raise RoomError(Denial.TARGET_NOT_PUBLISHING, participant_id=target.id)
        session = member.session
        self._check_not_subscribed(member, target)
        exchange = Exchange(
            id=self._new_id("x", self._exchanges),
            publisher=target,
            subscriber=member,
            state=_S.AWAITING_OFFER,
            deadline=now + self._config.sdp_timeout,
        )
        self._exchanges[exchange.id] = exchange
        session.pairs[(target.id, member.id)] = exchange
        target.exchanges[exchange.id] = exchange
        member.exchanges[exchange.id] = exchange
        assert exchange.deadline is not None
        self._schedule(exchange.deadline, "sdp", exchange.id)
        out.notify(
            [target],
            SubscribeRequestNotification(
                params=SubscribeRequestParams(
                    seq=0, exchange_id=exchange.id, subscriber_id=member.id
                )
            ),
        )
        return SubscribeResult(exchange_id=exchange.id)

    def _unsubscribe(
        self, out: Out, member: Member, request: UnsubscribeRequest, now: float
    ) -> Model:
        target = self._target(member, request.params.target)
        exchange = member.session.pairs.get((target.id, member.id))
        if exchange is not None:
            self._end_exchange(exchange)
            out.notify(
                [target],
                SubscriptionEndedNotification(
                    params=SubscriptionEndedParams(
                        seq=0,
                        exchange_id=exchange.id,
                        participant_id=member.id,
                        reason="unsubscribed",
                    )
                ),
            )
        return EmptyResult()

    def _exchange_of(self, member: Member, exchange_id: str, role: str) -> Exchange:
        """The open exchange ``exchange_id`` in which ``member`` plays ``role``.

        A refusal about an exchange ``member`` is a party to (in the other
        role, or ended) names the counterpart; about an unknown id, nobody
        (``handle`` then names the caller).
        """
        exchange = member.exchanges.get(exchange_id)
        if exchange is not None and (
            role == "either"
            or (role == "publisher" and exchange.publisher is member)
            or (role == "subscriber" and exchange.subscriber is member)
        ):
            return exchange
        denial = Denial.NO_OFFER if role == "subscriber" else Denial.UNKNOWN_EXCHANGE
        if exchange is not None:  # a party, in the other role
            raise RoomError(
                denial, participant_id=exchange.other(member).id, exchange_id=exchange_id
            )
        ended = member.ended.get(exchange_id)
        if ended is not None:
            raise RoomError(ended[0], participant_id=ended[1], exchange_id=exchange_id)
        raise RoomError(denial, exchange_id=exchange_id)

    def _transition(
        self, exchange: Exchange, event: ExchangeEvent, member: Member
    ) -> ExchangeState:
        state = EXCHANGE_TRANSITIONS.get((exchange.state, event))
        if state is None:
            raise RoomError(
                EXCHANGE_DENIALS[event],
                participant_id=exchange.other(member).id,
                exchange_id=exchange.id,
            )
        return state

    def _sdp_offer(self, out: Out, member: Member, request: SdpOfferRequest, now: float) -> Model:
        params = request.params
        exchange = self._exchange_of(member, params.exchange_id, "publisher")
        renegotiating = exchange.state is _S.ESTABLISHED
        exchange.state = self._transition(exchange, ExchangeEvent.OFFER, member)
        if renegotiating:
            exchange.deadline = now + self._config.sdp_timeout
            self._schedule(exchange.deadline, "sdp", exchange.id)
        subscriber = exchange.subscriber
        out.notify(
            [subscriber],
            SdpOfferNotification(
                params=SdpNotificationParams(
                    seq=0, exchange_id=exchange.id, from_=member.id, sdp=params.sdp
                )
            ),
        )
        held, exchange.held = exchange.held, None
        exchange.held_bytes = 0
        if held:
            for sender_id, candidates in held.items():
                recipient = subscriber if sender_id == member.id else member
                for candidate in candidates:
                    out.notify([recipient], candidate)
        return EmptyResult()

    def _sdp_answer(self, out: Out, member: Member, request: SdpAnswerRequest, now: float) -> Model:
        params = request.params
        exchange = self._exchange_of(member, params.exchange_id, "subscriber")
        exchange.state = self._transition(exchange, ExchangeEvent.ANSWER, member)
        exchange.deadline = None
        out.notify(
            [exchange.publisher],
            SdpAnswerNotification(
                params=SdpNotificationParams(
                    seq=0, exchange_id=exchange.id, from_=member.id, sdp=params.sdp
                )
            ),
        )
        return EmptyResult()

    def _ice_candidate(
        self, out: Out, member: Member, request: IceCandidateRequest, now: float
    ) -> Model:
        params = request.params
        exchange = self._exchange_of(member, params.exchange_id, "either")
        other = exchange.other(member)
        notification = IceCandidateNotification(
            params=IceCandidateNotificationParams(
                seq=0,
                exchange_id=exchange.id,
                from_=member.id,
                candidate=params.candidate,
                sdp_mid=params.sdp_mid,
                sdp_m_line_index=params.sdp_m_line_index,
            )
        )
        if exchange.held is None:
            out.notify([other], notification)
            return EmptyResult()
        queue = exchange.held.setdefault(member.id, [])
        if len(queue) >= self._config.ice_queue_limit:
            raise RoomError(Denial.ICE_QUEUE_FULL, participant_id=other.id, exchange_id=exchange.id)
        size = text_size(params.candidate)
        limit = self._config.max_held_ice_bytes
        if exchange.held_bytes + size > limit:
            error = too_large(
                "candidate", limit, "max_held_ice_bytes", ", held on this exchange before the offer"
            )
            error.exchange_id = exchange.id
            raise error
        exchange.held_bytes += size
        queue.append(notification)
        return EmptyResult()

    def _time_out(self, out: Out, exchange: Exchange) -> None:
        exchange.state = self._transition(exchange, ExchangeEvent.TIMEOUT, exchange.publisher)
        self._end_exchange(exchange, state=_S.TIMED_OUT)
        for member in (exchange.publisher, exchange.subscriber):
            other = exchange.other(member)
            member.tombstone(exchange.id, Denial.SDP_TIMEOUT, other.id)
            self._session_error(
                out, member, Denial.SDP_TIMEOUT, participant_id=other.id, exchange_id=exchange.id
            )
        logger.info("exchange %s timed out", exchange.id)
