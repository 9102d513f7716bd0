"""Peers that trickle, as browsers do: no candidates in the SDP, then iceCandidate, then the end.

The trickling peers here are plain aiortc written against the Session API
(not roomsignal.media), so that each direction is checked against a peer
the library did not make.
"""

from __future__ import annotations

import asyncio

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from roomsignal import Session
from roomsignal.media import (
    END_OF_CANDIDATES,
    Publisher,
    Subscriber,
    TestPatternTrack,
    ToneTrack,
    parse_candidate,
    split_candidates,
)
from roomsignal.protocol import (
    IceCandidateNotificationParams,
    SdpNotificationParams,
    SubscribeRequestParams,
)

from .conftest import WAIT, H, SessionFactory, W


def strip(sdp: str) -> tuple[str, list[str]]:
    """The SDP without candidates, and the candidates as a browser trickles them."""
    lines = sdp.splitlines()
    kept = [x for x in lines if not x.startswith("a=candidate:") and x != "a=end-of-candidates"]
    return "\r\n".join(kept) + "\r\n", [x[2:] for x in lines if x.startswith("a=candidate:")]


async def trickle(session: Session, exchange_id: str, candidates: list[str]) -> None:
    for candidate in candidates:
        await session.send_ice_candidate(exchange_id, candidate, sdp_mid="0", sdp_m_line_index=0)
    await session.send_ice_candidate(exchange_id, "", sdp_mid="0", sdp_m_line_index=0)


class Sdps:
    """Every SDP a session received, to check what went over the wire."""

    def __init__(self, session: Session) -> None:
        self.seen: list[str] = []
        session.on_sdp_offer(self.add)
        session.on_sdp_answer(self.add)

    def add(self, event: SdpNotificationParams) -> None:
        self.seen.append(event.sdp)


async def test_a_subscriber_connects_to_a_trickling_publisher(join: SessionFactory) -> None:
    browser, viewer = await join("browser"), await join("viewer")
    pcs: list[RTCPeerConnection] = []
    track = TestPatternTrack(W, H)

    async def offer(event: SubscribeRequestParams) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pcs.append(pc)
        pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp, candidates = strip(pc.localDescription.sdp)
        assert candidates
        await browser.send_offer(event.exchange_id, sdp)
        await trickle(browser, event.exchange_id, candidates)

    async def answer(event: SdpNotificationParams) -> None:
        await pcs[-1].setRemoteDescription(RTCSessionDescription(event.sdp, "answer"))

    browser.on_subscribe_request(offer)
    browser.on_sdp_answer(answer)
    await browser.publish(audio=False, video=True)
    received = Sdps(viewer)
    try:
        async with Subscriber(viewer) as subscriber:
            subscription = await subscriber.subscribe(browser.participant_id or "", timeout=WAIT)
            counts = await subscription.wait_for_frames(10, timeout=WAIT)
            assert (counts.width, counts.height) == (W, H)
            [remote] = subscription.pc.getTransceivers()
            candidates = remote.receiver.transport.transport.getRemoteCandidates()
            assert candidates  # they came by iceCandidate: the offer had none
        assert received.seen and all("a=candidate:" not in sdp for sdp in received.seen)
    finally:
        for pc in pcs:
            await pc.close()
        track.stop()


async def test_a_publisher_connects_to_a_trickling_subscriber(join: SessionFactory) -> None:
    studio, browser = await join("studio"), await join("browser")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    frames: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track: object) -> None:
        async def first() -> None:
            frame = await track.recv()  # type: ignore[attr-defined]
            if not frames.done():
                frames.set_result((frame.width, frame.height))

        reader = asyncio.ensure_future(first())
        readers.append(reader)

    readers: list[asyncio.Future[None]] = []

    async def answer(event: SdpNotificationParams) -> None:
        await pc.setRemoteDescription(RTCSessionDescription(event.sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        sdp, candidates = strip(pc.localDescription.sdp)
        await browser.send_answer(event.exchange_id, sdp)
        await trickle(browser, event.exchange_id, candidates)

    browser.on_sdp_offer(answer)
    received = Sdps(studio)
    async with Publisher(studio, video=TestPatternTrack(W, H), audio=ToneTrack()) as publisher:
        try:
            await browser.subscribe(studio.participant_id or "")
            assert await asyncio.wait_for(frames, WAIT) == (W, H)
            await publisher.wait_for_connected(1, timeout=WAIT)
            assert received.seen and all("a=candidate:" not in sdp for sdp in received.seen)
        finally:
            await pc.close()
            await asyncio.gather(*readers, return_exceptions=True)


async def test_both_sides_of_the_library_can_trickle(join: SessionFactory) -> None:
    studio, viewer = await join("studio"), await join("viewer")
    candidates: list[IceCandidateNotificationParams] = []
    viewer.on_ice_candidate(candidates.append)
    received = Sdps(viewer)
    publisher = Publisher(studio, video=TestPatternTrack(W, H), audio=ToneTrack(), trickle=True)
    async with publisher, Subscriber(viewer, trickle=True) as subscriber:
        subscription = await subscriber.subscribe(studio.participant_id or "", timeout=WAIT)
        await subscription.wait_for_frames(5, audio=5, timeout=WAIT)
        await publisher.wait_for_connected(1, timeout=WAIT)
    assert "a=candidate:" not in received.seen[0]
    assert candidates[-1].candidate == END_OF_CANDIDATES
    assert all(c.candidate.startswith("candidate:") for c in candidates[:-1])


def test_split_and_parse_candidates() -> None:
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
        "m=audio 5000 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 192.0.2.2\r\na=mid:0\r\n"
        "a=candidate:1 1 udp 2130706431 192.0.2.2 5000 typ host\r\na=end-of-candidates\r\n"
        "m=video 5000 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 192.0.2.2\r\na=mid:1\r\n"
        "a=candidate:1 1 udp 2130706431 192.0.2.2 5000 typ host\r\na=end-of-candidates\r\n"
    )
    stripped, trickled = split_candidates(sdp)
    assert "a=candidate" not in stripped and "end-of-candidates" not in stripped
    assert "m=audio 9 " in stripped and "c=IN IP4 0.0.0.0" in stripped
    assert [(t.candidate, t.sdp_mid, t.sdp_m_line_index) for t in trickled] == [
        ("candidate:1 1 udp 2130706431 192.0.2.2 5000 typ host", "0", 0),  # bundled: once
        ("", "0", 0),
    ]
    parsed = parse_candidate(trickled[0].candidate, "0", 0)
    assert parsed is not None and (parsed.ip, parsed.port, parsed.type) == (
        "192.0.2.2",
        5000,
        "host",
    )
    assert parse_candidate("", "0", 0) is None
    assert parse_candidate("a=end-of-candidates", None, None) is None
    bare = parse_candidate("1 1 udp 1 ::1 9 typ host", None, None)
    assert bare is not None and bare.sdpMLineIndex == 0  # neither mid nor index: the first m-line
    for bad in ("candidate:1 1 udp", "hello world", "candidate:1 1 udp x 1.2.3.4 9 typ host"):
        try:
            parse_candidate(bad, "0", 0)
        except ValueError as exc:
            assert "not an ICE candidate" in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")


async def test_the_subscriber_answers_a_renegotiating_offer(join: SessionFactory) -> None:
    raw, viewer = await join("raw"), await join("viewer")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = TestPatternTrack(W, H)
    pc.addTransceiver(track, direction="sendonly")
    answers: asyncio.Queue[str] = asyncio.Queue()
    exchange: list[str] = []

    async def offer(event: SubscribeRequestParams) -> None:
        exchange.append(event.exchange_id)
        await pc.setLocalDescription(await pc.createOffer())
        await raw.send_offer(event.exchange_id, pc.localDescription.sdp)

    async def answer(event: SdpNotificationParams) -> None:
        await pc.setRemoteDescription(RTCSessionDescription(event.sdp, "answer"))
        answers.put_nowait(event.sdp)

    raw.on_subscribe_request(offer)
    raw.on_sdp_answer(answer)
    await raw.publish(audio=False, video=True)
    try:
        async with Subscriber(viewer) as subscriber:
            subscription = await subscriber.subscribe(raw.participant_id or "", timeout=WAIT)
            await asyncio.wait_for(answers.get(), WAIT)
            # A new offer on the established exchange (a new sdp_timeout starts): answered too.
            await pc.setLocalDescription(await pc.createOffer())
            await raw.send_offer(exchange[0], pc.localDescription.sdp)
            assert "a=recvonly" in await asyncio.wait_for(answers.get(), WAIT)
            before = subscription.frames.video_frames
            await subscription.wait_for_frames(before + 10, timeout=WAIT)
            assert not subscription.closed
    finally:
        await pc.close()
        track.stop()
