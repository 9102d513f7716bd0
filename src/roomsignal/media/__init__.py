"""roomsignal.media: real audio and video through the signaling, with aiortc.

Needs the ``media`` extra (``pip install 'roomsignal[media]'``); ``import
roomsignal`` alone never imports aiortc. Built on the public ``Session`` API
only: a ``Publisher`` answers every ``subscribeRequest`` with its own peer
connection (through a media node: one upstream), a ``Subscriber`` subscribes
and receives (``auto_subscribe``: every stream published in the room). After
the server lost its media node both get their media back by themselves
(``on_restored``). Peer connections use no ICE servers unless given an
``RTCConfiguration`` with some. See docs/media.md.
"""

try:
    import aiortc as _aiortc  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("roomsignal.media needs aiortc: pip install 'roomsignal[media]'") from exc

from roomsignal.media._node import MEDIA_NODE_LOST, MediaRestored, is_media_node_lost
from roomsignal.media._peer import MediaReset, default_configuration
from roomsignal.media._publisher import Publisher
from roomsignal.media._sdp import END_OF_CANDIDATES, Trickled, parse_candidate, split_candidates
from roomsignal.media._subscriber import FrameCounts, Subscriber, Subscription, SubscriptionClosed
from roomsignal.media._tracks import TestPatternTrack, ToneTrack

__all__ = [
    "END_OF_CANDIDATES",
    "MEDIA_NODE_LOST",
    "FrameCounts",
    "MediaReset",
    "MediaRestored",
    "Publisher",
    "Subscriber",
    "Subscription",
    "SubscriptionClosed",
    "TestPatternTrack",
    "ToneTrack",
    "Trickled",
    "default_configuration",
    "is_media_node_lost",
    "parse_candidate",
    "split_candidates",
]
