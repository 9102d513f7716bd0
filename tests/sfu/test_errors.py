"""Section 10's error rows, each by its real condition (docs/media.md, "Janus errors").

Real Janus for 801 (nothing listening, a stopped process, a killed one) and
303; one deliberately broken fake media node for 802 (junk, an unmapped code).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from roomsignal import ErrorCode, MediaError, SessionErrorException
from roomsignal.server import SignalingServer
from roomsignal.server._janus_process import JanusProcess, _free_port

from .conftest import (
    WAIT,
    Heard,
    ServerFactory,
    SessionFactory,
    healthz,
    janus_rooms,
    media_node_errors,
    scrape,
)

GOOD_SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"


async def raw_offer() -> tuple[Any, str]:
    """A real aiortc send-only video offer (candidates in it)."""
    from aiortc import RTCPeerConnection

    from roomsignal.media import TestPatternTrack, default_configuration

    pc = RTCPeerConnection(default_configuration())
    pc.addTransceiver(TestPatternTrack(160, 120), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def test_nothing_listening_is_801_unreachable_and_healthz_503(
    make_server: ServerFactory, dial: SessionFactory
) -> None:
    server = await make_server(media_node=f"ws://127.0.0.1:{_free_port()}", media_node_timeout=1.0)
    assert server.media_node is not None and not server.media_node.healthy
    assert await healthz(server) == (503, "media node unreachable\n")
    session = await dial(server, "studio")
    with pytest.raises(MediaError) as raised:
        await session.publish(video=True, audio=False)
    error = raised.value.error
    assert error.code == ErrorCode.TRANSPORT_REQUEST_ERROR_CODE
    assert error.data["reason"] == "unreachable" and error.data["method"] == "publish"
    # Signaling goes on without the media node.
    assert await session.ping() > 0


async def test_an_sdp_janus_refuses_is_303_on_the_offer(
    janus: JanusProcess, make_server: ServerFactory, dial: SessionFactory
) -> None:
    server = await make_server(media_node=janus.url, metrics=True)
    assert await healthz(server) == (200, "ok\n")
    session = await dial(server, "studio")
    result = await session.publish_result(video=True, audio=False)
    assert result.exchange_id is not None
    with pytest.raises(MediaError) as raised:
        await session.send_offer(result.exchange_id, GOOD_SDP)  # no m= line
    data = raised.value.error.data
    assert raised.value.code == ErrorCode.MEDIA_ENDPOINT_ERROR_CODE
    assert data["method"] == "sdpOffer" and data["exchangeId"] == result.exchange_id
    assert data["mediaNodeCode"] == 465 and "m=" in data["mediaNodeReason"]
    assert (await scrape(server))[media_node_errors(303, "refused")] == 1.0
    # The upstream ended: publishing again opens a new one.
    again = await session.publish_result(video=True, audio=False)
    assert again.exchange_id != result.exchange_id


async def test_an_upstream_offer_not_sent_in_time_is_303(
    janus: JanusProcess, make_server: ServerFactory, dial: SessionFactory
) -> None:
    server = await make_server(media_node=janus.url, sdp_timeout=0.4)
    session, viewer = await dial(server, "studio"), await dial(server, "viewer")
    heard, seen = Heard(session), Heard(viewer)
    result = await session.publish_result(video=True, audio=False)
    error = await heard.wait("session_error")
    assert error.code == ErrorCode.MEDIA_ENDPOINT_ERROR_CODE
    assert error.data["exchangeId"] == result.exchange_id
    assert error.data["participantId"] == "@media"
    assert seen.of("stream_published") == [] and seen.of("stream_unpublished") == []
    with pytest.raises(SessionErrorException):  # the exchange is over
        await session.send_offer(result.exchange_id or "", GOOD_SDP)


async def test_an_upstream_that_never_connects_is_303_and_ends(
    janus: JanusProcess, make_server: ServerFactory, dial: SessionFactory
) -> None:
    server = await make_server(media_node=janus.url, sdp_timeout=1.0)
    session, viewer = await dial(server, "studio"), await dial(server, "viewer")
    heard, seen = Heard(session), Heard(viewer)
    # A real offer, answered by Janus; but its peer connection never takes
    # the answer, so it never does ICE: the upstream cannot come up.
    pc, sdp = await raw_offer()
    try:
        result = await session.publish_result(video=True, audio=False)
        upstream = result.exchange_id or ""
        await session.send_offer(upstream, sdp)
        answer = await heard.wait("sdp_answer")
        assert answer.exchange_id == upstream and answer.from_ == "@media"
        held = await viewer.subscribe(session.participant_id or "")  # held until it is up
        error = await heard.wait("session_error")
        assert error.code == ErrorCode.MEDIA_ENDPOINT_ERROR_CODE
        assert error.data["exchangeId"] == upstream and error.data["participantId"] == "@media"
        assert "connect" in error.message
        # The upstream ended: its held subscription, and its media on Janus.
        ended = await seen.wait("subscription_ended")
        assert ended.exchange_id == held and ended.reason == "unpublished"
        assert seen.of("stream_published") == [] and seen.of("session_error") == []
        with pytest.raises(MediaError) as raised:  # the exchange is over
            await session.send_ice_candidate(upstream, "")
        assert raised.value.code == ErrorCode.MEDIA_ENDPOINT_ERROR_CODE
        assert server.media_node is not None
        async with asyncio.timeout(WAIT):
            await server.media_node.wait_idle()
        assert await janus_rooms(janus.url) == []
    finally:
        await pc.close()


async def test_a_subscriber_answer_not_sent_in_time_is_303(
    janus: JanusProcess, make_server: ServerFactory, dial: SessionFactory
) -> None:
    from roomsignal.media import Publisher, TestPatternTrack

    server = await make_server(media_node=janus.url, sdp_timeout=1.0)
    studio, viewer = await dial(server, "studio"), await dial(server, "viewer")
    seen = Heard(viewer)
    async with Publisher(studio, video=TestPatternTrack(160, 120)) as publisher:
        await publisher.wait_for_connected(1, timeout=10)
        await seen.wait("stream_published")
        exchange_id = await viewer.subscribe(studio.participant_id or "")
        offer = await seen.wait("sdp_offer")
        assert offer.exchange_id == exchange_id and offer.from_ == studio.participant_id
        error = await seen.wait("session_error")  # ... no answer
        assert error.code == ErrorCode.MEDIA_ENDPOINT_ERROR_CODE
        assert error.data["exchangeId"] == exchange_id


async def test_an_answered_subscription_that_never_connects_is_303_and_ends(
    janus: JanusProcess, make_server: ServerFactory, dial: SessionFactory
) -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from roomsignal.media import (
        Publisher,
        Subscriber,
        TestPatternTrack,
        default_configuration,
    )

    server = await make_server(media_node=janus.url, sdp_timeout=1.0)
    studio, viewer, other = (
        await dial(server, "studio"),
        await dial(server, "viewer"),
        await dial(server, "other"),
    )
    seen, heard = Heard(viewer), Heard(other)
    target = studio.participant_id or ""
    # An answer Janus takes, made by a real aiortc peer connection that never
    # sets it as its local description, so it never does ICE: the
    # subscription cannot come up.
    pc = RTCPeerConnection(default_configuration())
    async with (
        Publisher(studio, video=TestPatternTrack(160, 120)) as publisher,
        Subscriber(other) as subscriber,
    ):
        try:
            await publisher.wait_for_connected(1, timeout=WAIT)
            good = await subscriber.subscribe(target, timeout=WAIT)  # connects in time
            exchange_id = await viewer.subscribe(target)
            offer = await seen.wait("sdp_offer")
            assert offer.exchange_id == exchange_id
            await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
            answer = await pc.createAnswer()
            await viewer.send_answer(exchange_id, answer.sdp)  # {}: Janus took it
            error = await seen.wait("session_error")
            assert error.code == ErrorCode.MEDIA_ENDPOINT_ERROR_CODE
            assert error.data["exchangeId"] == exchange_id
            assert error.data["participantId"] == target
            assert "connect" in error.message
            ended = await seen.wait("subscription_ended")
            assert ended.exchange_id == exchange_id and ended.reason == "connectTimeout"
            with pytest.raises(MediaError) as raised:  # the exchange is over
                await viewer.send_ice_candidate(exchange_id, "")
            assert raised.value.code == ErrorCode.MEDIA_ENDPOINT_ERROR_CODE
            # Its Janus handle is hung up; the upstream and the connected subscription go on.
            node = server.media_node
            assert node is not None
            async with asyncio.timeout(WAIT):
                await node.wait_idle()
            assert exchange_id not in node._keys
            assert exchange_id not in node._by_handle.values()
            assert good.exchange_id in node._by_handle.values()
            await good.wait_for_frames(good.frames.video_frames + 5, timeout=WAIT)
            assert heard.of("session_error") == [] and heard.of("subscription_ended") == []
        finally:
            await pc.close()


async def test_no_answer_within_the_media_node_timeout_is_801_timeout(
    janus: JanusProcess, make_server: ServerFactory, dial: SessionFactory
) -> None:
    server = await make_server(media_node=janus.url, media_node_timeout=0.5)
    session = await dial(server, "studio")
    pc, sdp = await raw_offer()
    try:
        result = await session.publish_result(video=True, audio=False)
        assert janus.pid is not None
        os.kill(janus.pid, signal.SIGSTOP)
        try:
            with pytest.raises(MediaError) as raised:
                await session.send_offer(result.exchange_id or "", sdp)
        finally:
            os.kill(janus.pid, signal.SIGCONT)
        assert raised.value.code == ErrorCode.TRANSPORT_REQUEST_ERROR_CODE
        assert raised.value.error.data["reason"] == "timeout"
    finally:
        await pc.close()


async def test_a_connection_closed_mid_request_is_801_then_media_node_lost(
    janus: JanusProcess, make_server: ServerFactory, dial: SessionFactory
) -> None:
    server = await make_server(media_node=janus.url, media_node_timeout=5.0)
    session = await dial(server, "studio")
    heard = Heard(session)
    pc, sdp = await raw_offer()
    try:
        result = await session.publish_result(video=True, audio=False)
        assert janus.pid is not None
        os.kill(janus.pid, signal.SIGSTOP)
        offer = asyncio.create_task(session.send_offer(result.exchange_id or "", sdp))
        try:
            assert server.media_node is not None
            async with asyncio.timeout(WAIT):  # the offer is with Janus, which cannot answer
                await server.media_node.wait_in_flight()
        finally:
            janus.kill()  # (SIGKILL ends a stopped process too)
        with pytest.raises(MediaError) as raised:
            await offer
        assert raised.value.error.data["reason"] == "connectionClosed"
        assert raised.value.error.data["method"] == "sdpOffer"
        await janus.wait_stopped()
        assert (await healthz(server))[0] == 503
        with pytest.raises(MediaError):
            await session.publish(video=True, audio=False)
        # Its upstream was through the lost node: told once, and ended.
        (lost,) = [e for e in heard.of("session_error") if e.method is None]
        assert lost.code == ErrorCode.TRANSPORT_REQUEST_ERROR_CODE
        assert lost.data["reason"] == "mediaNodeLost"
        (ended,) = heard.of("subscription_ended")
        assert ended.exchange_id == result.exchange_id and ended.reason == "mediaNodeLost"
    finally:
        await pc.close()


# --- one deliberately broken fake media node (802) ----------------------------------


@pytest.fixture
async def fake_node() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A WebSocket server that opens a Janus session, then answers ``attach`` by ``mode``."""
    mode: dict[str, Any] = {"attach": "junk"}

    async def handler(ws: ServerConnection) -> None:
        async for raw in ws:
            message = json.loads(raw)
            transaction = message.get("transaction")
            kind = message.get("janus")
            if kind == "create":
                await ws.send(
                    json.dumps({"janus": "success", "transaction": transaction, "data": {"id": 7}})
                )
            elif kind == "keepalive":
                await ws.send(json.dumps({"janus": "ack", "transaction": transaction}))
            elif mode["attach"] == "junk":
                await ws.send("<html>surely not Janus</html>")
            else:
                error = {"code": 499, "reason": "out of cheese"}
                await ws.send(
                    json.dumps({"janus": "error", "transaction": transaction, "error": error})
                )

    async with serve(handler, "127.0.0.1", 0, subprotocols=["janus-protocol"]) as fake:  # type: ignore[list-item]
        port = fake.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}", mode


@pytest.mark.parametrize("attach", ["junk", "error"])
async def test_junk_or_an_unmapped_error_is_802(
    attach: str,
    fake_node: tuple[str, dict[str, Any]],
    make_server: ServerFactory,
    dial: SessionFactory,
) -> None:
    url, mode = fake_node
    mode["attach"] = attach
    server = await make_server(media_node=url, metrics=True)
    session = await dial(server, "studio")
    result = await session.publish_result(video=True, audio=False)
    with pytest.raises(MediaError) as raised:
        await session.send_offer(result.exchange_id or "", GOOD_SDP)
    error = raised.value.error
    assert error.code == ErrorCode.TRANSPORT_RESPONSE_ERROR_CODE
    assert error.data["method"] == "sdpOffer"
    if attach == "error":
        assert error.data["mediaNodeCode"] == 499
        assert error.data["mediaNodeReason"] == "out of cheese"
    else:
        assert "mediaNodeCode" not in error.data
    assert (await scrape(server))[media_node_errors(802, "response")] == 1.0


async def test_an_answer_janus_refuses_is_303_on_the_answer(
    janus: JanusProcess, make_server: ServerFactory, dial: SessionFactory
) -> None:
    from roomsignal.media import Publisher, TestPatternTrack

    server = await make_server(media_node=janus.url)
    studio, viewer = await dial(server, "studio"), await dial(server, "viewer")
    seen = Heard(viewer)
    async with Publisher(studio, video=TestPatternTrack(160, 120)) as publisher:
        await publisher.wait_for_connected(1, timeout=WAIT)
        await seen.wait("stream_published")
        exchange_id = await viewer.subscribe(studio.participant_id or "")
        await seen.wait("sdp_offer")
        with pytest.raises(MediaError) as raised:
            await viewer.send_answer(exchange_id, GOOD_SDP)  # no m= line
        data = raised.value.error.data
        assert raised.value.code == ErrorCode.MEDIA_ENDPOINT_ERROR_CODE
        assert data["method"] == "sdpAnswer" and data["exchangeId"] == exchange_id
        assert data["mediaNodeCode"] == 465 and "m=" in data["mediaNodeReason"]
        ended = await seen.wait("subscription_ended")
        assert ended.exchange_id == exchange_id and ended.reason == "mediaNodeError"


@pytest.mark.parametrize(
    ("answer", "carries_sdp", "code", "extra"),
    [
        # the rows of docs/media.md, "Janus errors", that no real condition above reaches
        ({"janus": "error", "error": {"code": 464, "reason": "x"}}, True, 303, 464),
        ({"janus": "error", "error": {"code": 465, "reason": "x"}}, True, 303, 465),
        (
            {"janus": "event", "plugindata": {"data": {"error_code": 431, "error": "x"}}},
            True,
            303,
            431,
        ),
        (
            {"janus": "event", "plugindata": {"data": {"error_code": 437, "error": "x"}}},
            True,
            303,
            437,
        ),
        # the same codes on a request that carried no SDP of the participant's: 802
        ({"janus": "error", "error": {"code": 465, "reason": "x"}}, False, 802, 465),
        (
            {"janus": "event", "plugindata": {"data": {"error_code": 428, "error": "x"}}},
            False,
            802,
            428,
        ),
        ({"janus": "success"}, True, 802, None),
        ("not even a dict", False, 802, None),
    ],
)
def test_the_janus_error_table(
    answer: Any, carries_sdp: bool, code: int, extra: int | None
) -> None:
    from roomsignal.server._janus import failure_of

    failure = failure_of(answer, carries_sdp=carries_sdp)
    assert int(failure.denial.value.code) == code
    assert failure.extra.get("mediaNodeCode") == extra


async def test_a_subscribe_whose_subscription_ends_before_the_offer_is_answered(
    janus: JanusProcess, server: SignalingServer, join: SessionFactory
) -> None:
    """The subscription ends while its offer is being made: its ``subscribe`` still gets an answer.

    Janus is frozen with the subscribe in flight; the subscriber unsubscribes
    meanwhile. The ``subscribe`` is answered (101: the exchange is no longer
    open), not left waiting forever.
    """
    from roomsignal.media import Publisher, TestPatternTrack

    studio, viewer = await join("studio"), await join("viewer")
    seen = Heard(viewer)
    assert janus.pid is not None and server.media_node is not None
    async with Publisher(studio, video=TestPatternTrack(160, 120)) as publisher:
        await publisher.wait_for_connected(1, timeout=WAIT)
        await seen.wait("stream_published")
        target = studio.participant_id or ""
        os.kill(janus.pid, signal.SIGSTOP)
        try:
            subscribing = asyncio.ensure_future(viewer.subscribe(target))
            async with asyncio.timeout(WAIT):  # its offer is with Janus, which cannot answer
                await server.media_node.wait_in_flight()
            await viewer.unsubscribe(target)
        finally:
            os.kill(janus.pid, signal.SIGCONT)
        with pytest.raises(SessionErrorException) as raised:
            async with asyncio.timeout(WAIT):
                await subscribing
        assert raised.value.code == ErrorCode.USER_GENERIC_ERROR_CODE
        assert raised.value.error.data["method"] == "subscribe"
        member = server.rooms._members[viewer.participant_id or ""]
        assert not member.waiting  # nothing left owed
