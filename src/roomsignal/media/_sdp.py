"""SDP and ICE candidate text: trickled candidates in, candidates out of an SDP.

aiortc puts every candidate it gathered into its SDP and never trickles;
browsers send an SDP without candidates and trickle them as ``iceCandidate``
(``candidate:...`` lines, then an end-of-candidates). This module turns the
wire form into aiortc's ``RTCIceCandidate`` (or None, for end-of-candidates)
and, for a peer that trickles, takes the candidates out of an SDP.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiortc import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp

__all__ = [
    "END_OF_CANDIDATES",
    "Trickled",
    "bundle_tags",
    "parse_candidate",
    "split_candidates",
]

END_OF_CANDIDATES = ""
"""The ``candidate`` text that signals end-of-candidates on the wire (as browsers do)."""

_END_FORMS = {"", "end-of-candidates", "a=end-of-candidates"}


@dataclass(frozen=True, slots=True)
class Trickled:
    """One candidate as sent in ``iceCandidate`` (``candidate`` is ``""`` at the end)."""

    candidate: str
    sdp_mid: str | None
    sdp_m_line_index: int | None


def parse_candidate(
    text: str, sdp_mid: str | None, sdp_m_line_index: int | None
) -> RTCIceCandidate | None:
    """A trickled candidate as aiortc's ``RTCIceCandidate``; None for end-of-candidates.

    Accepts ``candidate:<foundation> ...`` (the browser form), with or without
    a leading ``a=``, or the bare attribute value. A candidate with neither
    ``sdpMid`` nor ``sdpMLineIndex`` is taken for the first m-line (the
    BUNDLE transport). Raises ``ValueError`` for text that is no candidate.
    """
    value = text.strip()
    if value in _END_FORMS:
        return None
    if value.startswith("a="):
        value = value[2:]
    if value.startswith("candidate:"):
        value = value[len("candidate:") :]
    bits = value.split()
    if len(bits) < 8 or bits[6] != "typ":
        raise ValueError(f"not an ICE candidate: {text!r}")
    try:
        candidate = candidate_from_sdp(value)
    except (AssertionError, ValueError, IndexError) as exc:
        raise ValueError(f"not an ICE candidate: {text!r} ({exc})") from None
    candidate.sdpMid = sdp_mid
    candidate.sdpMLineIndex = sdp_m_line_index
    if sdp_mid is None and sdp_m_line_index is None:
        candidate.sdpMLineIndex = 0
    return candidate


def bundle_tags(sdp: str) -> dict[str, str]:
    """For each mid in a BUNDLE group of ``sdp``, the group's first mid (its transport)."""
    tags: dict[str, str] = {}
    for line in sdp.splitlines():
        if line.startswith("a=group:BUNDLE "):
            mids = line[len("a=group:BUNDLE ") :].split()
            for mid in mids:
                tags.setdefault(mid, mids[0])
    return tags


def split_candidates(sdp: str) -> tuple[str, list[Trickled]]:
    """``sdp`` without its candidates, and those candidates to trickle, as a browser would.

    Candidates shared by bundled m-lines are listed once, for the first m-line
    that has them; one end-of-candidates follows them. The m-lines get port 9
    and the connection lines ``0.0.0.0``, as in a browser's first offer.
    """
    kept: list[str] = []
    found: list[Trickled] = []
    seen: set[str] = set()
    index = -1
    mid: str | None = None
    first: tuple[str | None, int] | None = None
    pending: list[str] = []  # candidates of the current m-line, waiting for its mid

    def flush() -> None:
        for text in pending:
            if text not in seen:
                seen.add(text)
                found.append(Trickled(text, mid, index))
        pending.clear()

    for line in sdp.splitlines():
        if line.startswith("m="):
            flush()
            index += 1
            mid = None
            parts = line.split(" ", 2)
            if len(parts) == 3:
                line = f"{parts[0]} 9 {parts[2]}"
        elif index >= 0 and line.startswith("c=IN IP4 "):
            line = "c=IN IP4 0.0.0.0"
        elif index >= 0 and line.startswith("c=IN IP6 "):
            line = "c=IN IP6 ::"
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :].strip()
            if first is None:
                first = (mid, index)
        if line.startswith("a=candidate:"):
            pending.append(line[2:])
            continue
        if line == "a=end-of-candidates":
            continue
        kept.append(line)
    flush()
    if first is not None or found:
        end_mid, end_index = first if first is not None else (None, 0)
        found.append(Trickled(END_OF_CANDIDATES, end_mid, end_index))
    return "\r\n".join(kept) + "\r\n", found
