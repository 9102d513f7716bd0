"""``Session``'s request methods: one per wire request (docs/protocol.md section 5).

A mixin of ``Session``: each method builds its request and awaits
``_call`` (the shell's request machinery), then parses the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from roomsignal.catalog import ErrorCode
from roomsignal.client._core import ping_frame
from roomsignal.errors import SessionErrorException
from roomsignal.protocol import (
    CloseSessionParams,
    CloseSessionRequest,
    GetSessionStateRequest,
    IceCandidateParams,
    IceCandidateRequest,
    Model,
    PingResult,
    PublishParams,
    PublishRequest,
    PublishResult,
    SdpAnswerRequest,
    SdpOfferRequest,
    SdpParams,
    SendMessageParams,
    SendMessageRequest,
    SendSyncDataParams,
    SendSyncDataRequest,
    SessionStateResult,
    SimulateScenarioParams,
    SimulateScenarioRequest,
    Streams,
    SubscribeRequest,
    SubscribeResult,
    TargetParams,
    UnpublishRequest,
    UnsubscribeRequest,
)

if TYPE_CHECKING:
    from roomsignal.client._restore import Kept

__all__ = ["RequestMethods"]

R = TypeVar("R", bound=Model)


class RequestMethods:
    """The public requests (a mixin of ``Session``)."""

    if TYPE_CHECKING:

        async def _call(
            self, method: str, build: Callable[[int], Model | str]
        ) -> dict[str, Any]: ...

        _kept: Kept | None

        def _keeping(self) -> Kept: ...

        def _keep_subscription(self, target: str) -> None: ...

        def _drop_subscription(self, target: str) -> None: ...

        def _client_error(
            self, code: ErrorCode, message: str, method: str | None, **data: Any
        ) -> SessionErrorException: ...

    async def publish(self, *, audio: bool = True, video: bool = True, restore: bool = True) -> str:
        """Start (or update) publishing; returns the stream id.

        With ``restore`` (the default) the session publishes again with the
        same flags after a state reset (docs/client.md); ``restore=False``
        leaves that to the caller (``roomsignal.media`` restores its own).
        """
        result = await self.publish_result(audio=audio, video=video, restore=restore)
        return result.stream_id

    async def publish_result(
        self, *, audio: bool = True, video: bool = True, restore: bool = True
    ) -> PublishResult:
        """``publish``, returning its whole result.

        Through a media node (``docs/media.md``) ``exchange_id`` is the
        upstream exchange to offer on; peer to peer it is None.
        """
        result = await self._call(
            "publish",
            lambda i: PublishRequest(id=i, params=PublishParams(audio=audio, video=video)),
        )
        parsed = self._result(PublishResult, result, "publish")
        kept = self._keeping()
        kept.published = Streams(audio=audio, video=video)
        kept.restore_publish = kept.published if restore else None
        return parsed

    async def unpublish(self) -> None:
        """Stop publishing."""
        await self._call("unpublish", lambda i: UnpublishRequest(id=i))
        if self._kept is not None:
            self._kept.published = self._kept.restore_publish = None

    async def subscribe(self, target: str, *, restore: bool = True) -> str:
        """Ask for ``target``'s media; returns the exchange id (the offer comes as an event).

        With ``restore`` (the default), after a state reset the session
        subscribes again to the participant of the same name, once it is back;
        ``restore=False`` leaves that to the caller (as ``roomsignal.media`` does).
        """
        result = await self._call(
            "subscribe", lambda i: SubscribeRequest(id=i, params=TargetParams(target=target))
        )
        exchange_id = self._result(SubscribeResult, result, "subscribe").exchange_id
        if restore:
            self._keep_subscription(target)
        return exchange_id

    async def unsubscribe(self, target: str) -> None:
        """End the subscription to ``target`` (and its restore after a reset)."""
        self._drop_subscription(target)
        await self._call(
            "unsubscribe", lambda i: UnsubscribeRequest(id=i, params=TargetParams(target=target))
        )

    async def send_offer(self, exchange_id: str, sdp: str) -> None:
        """Send our SDP offer on an exchange (publisher to subscriber)."""
        await self._call(
            "sdpOffer",
            lambda i: SdpOfferRequest(id=i, params=SdpParams(exchange_id=exchange_id, sdp=sdp)),
        )

    async def send_answer(self, exchange_id: str, sdp: str) -> None:
        """Send our SDP answer on an exchange (subscriber to publisher)."""
        await self._call(
            "sdpAnswer",
            lambda i: SdpAnswerRequest(id=i, params=SdpParams(exchange_id=exchange_id, sdp=sdp)),
        )

    async def send_ice_candidate(
        self,
        exchange_id: str,
        candidate: str,
        *,
        sdp_mid: str | None = None,
        sdp_m_line_index: int | None = None,
    ) -> None:
        """Trickle one ICE candidate on an exchange."""
        params = IceCandidateParams(
            exchange_id=exchange_id,
            candidate=candidate,
            sdp_mid=sdp_mid,
            sdp_m_line_index=sdp_m_line_index,
        )
        await self._call("iceCandidate", lambda i: IceCandidateRequest(id=i, params=params))

    async def send_message(self, text: str, to: list[str] | None = None) -> None:
        """Send chat text to everyone else, or only to the participant ids in ``to``."""
        await self._call(
            "sendMessage",
            lambda i: SendMessageRequest(id=i, params=SendMessageParams(text=text, to=to)),
        )

    async def send_sync_data(
        self, position: float, playing: bool, rate: float = 1.0, media_id: str | None = None
    ) -> None:
        """Broadcast the playback position (needs the ``synchronizer`` role)."""
        params = SendSyncDataParams(
            position=float(position), playing=playing, rate=float(rate), media_id=media_id
        )
        await self._call("sendSyncData", lambda i: SendSyncDataRequest(id=i, params=params))

    async def get_state(self) -> SessionStateResult:
        """The session's members and sync state, as the server sees them."""
        result = await self._call("getSessionState", lambda i: GetSessionStateRequest(id=i))
        return self._result(SessionStateResult, result, "getSessionState")

    async def close_session(self, reason: str | None = None) -> None:
        """Close the session for everyone (needs the ``moderator`` role)."""
        await self._call(
            "closeSession",
            lambda i: CloseSessionRequest(id=i, params=CloseSessionParams(reason=reason)),
        )

    async def ping(self) -> float:
        """One round trip; returns the server's time (Unix seconds)."""
        result = await self._call("ping", ping_frame)
        server_time = result.get("serverTime") if type(result) is dict else None
        if type(server_time) is float and len(result) == 1:
            return server_time  # what PingResult would give, 1.4 µs sooner
        return self._result(PingResult, result, "ping").server_time

    async def simulate_scenario(self, scenario: str, **params: Any) -> None:
        """Ask a server started with simulation allowed to misbehave (docs/protocol.md section 9)."""
        await self._call(
            "simulateScenario",
            lambda i: SimulateScenarioRequest(
                id=i, params=SimulateScenarioParams(scenario=scenario, **params)
            ),
        )

    # -- results ---

    def _result(self, model: type[R], raw: dict[str, Any], method: str) -> R:
        """Parse a result; a malformed one is a protocol error (reported, then raised)."""
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            errors = [
                {"loc": ["result", *err["loc"]], "msg": err["msg"]}
                for err in exc.errors(include_url=False, include_input=False)
            ]
            raise self._client_error(
                ErrorCode.INVALID_REQUEST,
                f"the server's result for {method!r} is malformed",
                method,
                errors=errors,
            ) from None
