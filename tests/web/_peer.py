"""A Python aiortc peer for the browser tests: subscribes to a participant and decodes its video.

Written against the public ``roomsignal.Session`` API and aiortc alone, with
``RTCConfiguration(iceServers=[])`` (host candidates only). A browser trickles
its candidates; they are added after the offer has been handled, and ``""``
(end-of-candidates) becomes ``addIceCandidate(None)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from roomsignal import Session
from roomsignal.cli._demo_web import candidate_from_wire
from roomsignal.protocol import IceCandidateNotificationParams, SdpNotificationParams


class VideoSubscriber:
    """Subscribes ``session`` to targets; counts the frames it decodes from each."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.peers: dict[str, RTCPeerConnection] = {}
        self.frames: dict[str, list[tuple[int, int]]] = {}
        self.candidates: dict[str, list[str]] = {}
        self.got_frames: dict[str, asyncio.Event] = {}
        self.end_of_candidates: dict[str, asyncio.Event] = {}
        self._offered: dict[str, asyncio.Event] = {}
        self._readers: set[asyncio.Task[None]] = set()
        session.on_sdp_offer(self._on_offer)
        session.on_ice_candidate(self._on_candidate)

    async def subscribe(self, target: str, frames: int = 10) -> str:
        """Subscribe to ``target``; ``got_frames[exchange]`` is set after ``frames`` decoded."""
        exchange = await self.session.subscribe(target)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.peers[exchange] = pc
        self.frames[exchange] = []
        self.candidates[exchange] = []
        self.got_frames[exchange] = asyncio.Event()
        self.end_of_candidates[exchange] = asyncio.Event()
        self._offered.setdefault(exchange, asyncio.Event())

        @pc.on("track")
        def on_track(track: Any) -> None:
            self._readers.add(asyncio.ensure_future(self._read(exchange, track, frames)))

        return exchange

    async def _read(self, exchange: str, track: Any, wanted: int) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()  # a decoded av.VideoFrame
                self.frames[exchange].append((frame.width, frame.height))
                if len(self.frames[exchange]) >= wanted:
                    self.got_frames[exchange].set()

    async def _on_offer(self, event: SdpNotificationParams) -> None:
        pc = self.peers.get(event.exchange_id)
        if pc is None:
            return
        await pc.setRemoteDescription(RTCSessionDescription(event.sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        self._offered.setdefault(event.exchange_id, asyncio.Event()).set()
        await self.session.send_answer(event.exchange_id, pc.localDescription.sdp)

    async def _on_candidate(self, event: IceCandidateNotificationParams) -> None:
        pc = self.peers.get(event.exchange_id)
        if pc is None:
            return
        self.candidates[event.exchange_id].append(event.candidate)
        if event.candidate == "":
            self.end_of_candidates[event.exchange_id].set()
        await self._offered.setdefault(event.exchange_id, asyncio.Event()).wait()
        await pc.addIceCandidate(candidate_from_wire(event))

    async def close(self) -> None:
        """Stop the readers and close every peer connection."""
        for pc in self.peers.values():
            await pc.close()
        for task in self._readers:
            task.cancel()
        for task in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
