"""The media node's metrics, read through ``GET /metrics`` (docs/operations.md)."""

from __future__ import annotations

import pytest

from roomsignal import ErrorCode, MediaError
from roomsignal.media import Publisher, Subscriber, TestPatternTrack
from roomsignal.server import SignalingServer
from roomsignal.server._janus_process import JanusProcess

from .conftest import (
    WAIT,
    H,
    Heard,
    ServerFactory,
    SessionFactory,
    W,
    media_node_errors,
    scrape,
)

pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")

UPSTREAM_UP = ("roomsignal_media_node_exchanges", (("kind", "upstream"), ("state", "up")))
SUBSCRIBED = (
    "roomsignal_media_node_exchanges",
    (("kind", "subscription"), ("state", "established")),
)


async def test_state_exchanges_and_errors_of_the_media_node(
    janus: JanusProcess, make_server: ServerFactory, dial: SessionFactory
) -> None:
    server = await make_server(media_node=janus.url, metrics=True)
    studio, viewer = await dial(server, "studio"), await dial(server, "viewer")
    heard = Heard(viewer)
    first = await scrape(server)
    assert first[("roomsignal_media_node_up", ())] == 1.0
    assert first[("roomsignal_media_node_losses_total", ())] == 0.0
    async with (
        Publisher(studio, video=TestPatternTrack(W, H)) as publisher,
        Subscriber(viewer) as subscriber,
    ):
        await publisher.wait_for_connected(1, timeout=WAIT)
        subscription = await subscriber.subscribe(studio.participant_id or "", timeout=WAIT)
        await subscription.wait_for_frames(1, timeout=WAIT)
        flowing = await scrape(server)
        assert flowing[UPSTREAM_UP] == 1.0 and flowing[SUBSCRIBED] == 1.0
        for kind in ("upstream", "subscription"):
            opened = ("roomsignal_media_node_exchanges_opened_total", (("kind", kind),))
            assert flowing[opened] == 1.0
        janus.kill()  # lost: both parties told (801 mediaNodeLost), each exchange ends
        await janus.wait_stopped()
        await heard.wait("subscription_ended")  # (told once the session was gone)
        with pytest.raises(MediaError):  # 801 unreachable until it is back
            await studio.publish(video=True, audio=False)
        lost = await scrape(server)
        assert lost[("roomsignal_media_node_up", ())] == 0.0
        assert lost[("roomsignal_media_node_losses_total", ())] == 1.0
        assert lost[media_node_errors(801, "mediaNodeLost")] == 2.0
        assert lost[media_node_errors(801, "unreachable")] >= 1.0
        assert UPSTREAM_UP not in lost and SUBSCRIBED not in lost
        # the catalog's own count of 801 agrees
        pushed = (
            "roomsignal_errors_total",
            (("code", "801"), ("name", ErrorCode(801).name), ("via", "push")),
        )
        assert lost[pushed] == 2.0


async def test_a_media_node_metric_is_absent_without_a_media_node() -> None:
    async with SignalingServer(metrics=True) as server:
        samples = await scrape(server)
    assert ("roomsignal_sessions", ()) in samples
    assert not [name for name, _ in samples if name.startswith("roomsignal_media_node")]


async def test_a_held_subscription_the_media_node_fails_is_a_counted_push(
    janus: JanusProcess,
    make_server: ServerFactory,
    dial: SessionFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A held subscription whose offer the media node fails to make: a counted push.

    Held until its upstream is up, then refused (here: no answer in time), it
    is told to its subscriber as ``sessionError``, as ``roomsignal_errors`` counts.
    """
    import os
    import signal

    from aiortc import RTCSessionDescription

    from .test_errors import raw_offer

    server = await make_server(media_node=janus.url, metrics=True, media_node_timeout=0.5)
    studio, viewer = await dial(server, "studio"), await dial(server, "viewer")
    heard, seen = Heard(studio), Heard(viewer)
    assert janus.pid is not None
    pid = janus.pid
    media_up = server.media_up

    def stop_janus_then(key: str) -> None:  # Janus freezes before the held subscribe goes
        os.kill(pid, signal.SIGSTOP)
        media_up(key)

    monkeypatch.setattr(server, "media_up", stop_janus_then)
    pc, sdp = await raw_offer()
    try:
        result = await studio.publish_result(video=True, audio=False)
        await studio.send_offer(result.exchange_id or "", sdp)
        answer = await heard.wait("sdp_answer")
        held = await viewer.subscribe(studio.participant_id or "")  # not up yet: held
        await pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
        try:
            error = await seen.wait("session_error")
        finally:
            os.kill(pid, signal.SIGCONT)
        assert error.code == ErrorCode.TRANSPORT_REQUEST_ERROR_CODE
        assert error.data["reason"] == "timeout" and error.data["exchangeId"] == held
        samples = await scrape(server)
        assert samples[media_node_errors(801, "timeout")] == 1.0
        pushed = (
            "roomsignal_errors_total",
            (("code", "801"), ("name", ErrorCode(801).name), ("via", "push")),
        )
        assert samples.get(pushed) == 1.0
    finally:
        await pc.close()
