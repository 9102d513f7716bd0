"""What the server counts, and ``GET /metrics`` in Prometheus' text format (docs/operations.md).

Two halves, so that the hot paths never pay for ``prometheus_client``:

- ``Counts``: plain ints and dicts that the transport, the rooms and the
  cluster bump where things happen (a join, an error answered, a write).
  Always there, no extra needed: an increment costs what an ``int`` add costs.
- ``METRICS``: the table of every metric the server exposes, each a name, a
  kind, a help text, its labels and a ``read(server)`` function that turns
  ``Counts`` and the live state (rooms, links, the cluster) into samples. It
  is read only when Prometheus scrapes (``Collector.collect``), and it is
  the one source of docs/operations.md's list (``render_markdown``).

Adding a metric (say, for the media node): count it in plain ints somewhere
the server can reach (a field of ``Counts``, or an attribute of your own
object), then add one ``Metric`` row to ``METRICS`` whose ``read`` returns
its samples, and run ``python scripts/gen_operations.py`` to regenerate the
docs list (a test fails until you do). Labels must stay bounded: never a
session or participant id; an error code outside the catalog is ``other``.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from roomsignal.catalog import entries, lookup

if TYPE_CHECKING:
    from roomsignal.server._transport import SignalingServer

__all__ = [
    "LATENCY_BUCKETS",
    "METRICS",
    "METRICS_PATH",
    "Counts",
    "Histogram",
    "Metric",
    "error_labels",
    "make_registry",
    "metrics_available",
    "render_markdown",
]

METRICS_PATH = "/metrics"
INSTALL_HINT = "pip install 'roomsignal[metrics]'"

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
"""Upper bounds (seconds) of the latency histograms' buckets (``+Inf`` is added)."""


class Histogram:
    """A histogram in plain ints: ``observe`` is one bisect and two adds."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count)`` pairs, cumulative, ending with ``+Inf`` (Prometheus' form)."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return out


class Counts:
    """Everything the server counts as it runs; plain ints, read at scrape time.

    Owned by one ``SignalingServer`` (``server.counts``), shared with its
    rooms and links. Not thread-safe (nothing of the server is).
    """

    __slots__ = (
        "bytes_written",
        "errors",
        "evictions",
        "joins",
        "latency",
        "leaves",
        "left_seq",
        "media_errors",
        "media_losses",
        "media_opened",
        "pings",
        "refused",
        "relay_flush",
        "relay_latency",
        "relayed",
        "replay_gaps",
        "resumes",
        "state_resets",
        "takeovers",
    )

    def __init__(self) -> None:
        self.joins: dict[str, int] = {}  # by participant type
        self.leaves: dict[str, int] = {}  # by reason (participantLeft's)
        self.resumes = 0
        self.state_resets: dict[str, int] = {}  # by reason
        self.replay_gaps = 0
        self.left_seq = 0  # notifications numbered for seats that have ended
        self.bytes_written = 0
        self.evictions = 0  # closed with 4002
        self.refused = 0  # handshakes answered 503
        self.errors: dict[tuple[int, str], int] = {}  # (code, "answer" | "push")
        self.latency: dict[str, Histogram] = {}  # by method
        self.pings = 0  # plain pings, answered by the shortcut (not timed)
        # the cluster
        self.relayed: dict[tuple[str, str], int] = {}  # (direction, kind)
        self.relay_flush = Histogram()
        self.relay_latency = Histogram()  # a frame's or write's send call to the peer's reader
        self.takeovers = 0
        # the media node (PROTOCOL.md section 10)
        self.media_opened: dict[str, int] = {}  # exchanges opened, by kind
        self.media_errors: dict[tuple[int, str], int] = {}  # (801/802/303, reason)
        self.media_losses = 0  # Janus sessions lost (connection closed, keepalive missed)

    def error(self, code: int, via: str, count: int = 1) -> None:
        """Count ``count`` errors with ``code``, answered (``answer``) or pushed (``push``)."""
        self.bump(self.errors, (code, via), count)

    def timed(self, method: str, seconds: float) -> None:
        """Record one request of ``method`` handled in ``seconds``."""
        histogram = self.latency.get(method)
        if histogram is None:
            histogram = self.latency[method] = Histogram()
        histogram.observe(seconds)

    @staticmethod
    def bump(table: dict[Any, int], key: Any, count: int = 1) -> None:
        """``table[key] += count``, starting at 0."""
        table[key] = table.get(key, 0) + count


_CATALOG_CODES = frozenset(entry.code for entry in entries())


def error_labels(code: int) -> tuple[str, str]:
    """The bounded ``(code, name)`` labels of an error code: ``other`` outside the catalog."""
    if code not in _CATALOG_CODES:
        return "other", "UNKNOWN"
    return str(code), lookup(code).name


# --- the table of metrics -----------------------------------------------------------

Kind = Literal["counter", "gauge", "histogram"]
Sample = tuple[tuple[str, ...], float]
HistogramSample = tuple[tuple[str, ...], Histogram]


@dataclass(frozen=True, slots=True)
class Metric:
    """One exposed metric: its name, kind, help, label names, and how to read it.

    ``read(server)`` returns ``(label values, value)`` pairs (a ``Histogram``
    as the value for a histogram). A counter's ``name`` has no ``_total``:
    Prometheus' exposition adds it.
    """

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    read: Callable[[SignalingServer], Iterable[tuple[tuple[str, ...], Any]]]
    cluster: bool = False  # only on a cluster node
    media: bool = False  # only on a server with a media node


def _one(value: float) -> list[Sample]:
    return [((), float(value))]


def _table(table: dict[Any, int]) -> list[Sample]:
    return [((key,) if isinstance(key, str) else key, float(n)) for key, n in table.items()]


def _participants(server: SignalingServer) -> list[Sample]:
    by: dict[tuple[str, str], int] = {}
    rooms = server._rooms
    for member in rooms._members.values() if rooms is not None else ():
        key = (member.type, "true" if member.conn is not None else "false")
        by[key] = by.get(key, 0) + 1
    return [(key, float(n)) for key, n in sorted(by.items())]


def _notifications(server: SignalingServer) -> list[Sample]:
    rooms = server._rooms
    live = sum(m.seq for m in rooms._members.values()) if rooms is not None else 0
    return _one(server.counts.left_seq + live)


def _errors(server: SignalingServer) -> list[Sample]:
    merged: dict[tuple[str, str, str], int] = {}
    for (code, via), n in server.counts.errors.items():
        key = (*error_labels(code), via)
        merged[key] = merged.get(key, 0) + n
    return [(key, float(n)) for key, n in sorted(merged.items())]


def _connections(server: SignalingServer) -> list[Sample]:
    inner = server._server
    return _one(len(inner.connections) if inner is not None else 0)


def _sessions(server: SignalingServer) -> list[Sample]:
    rooms = server._rooms
    return _one(len(rooms._sessions) if rooms is not None else 0)


def _exchanges(server: SignalingServer) -> list[Sample]:
    rooms = server._rooms
    return _one(len(rooms._exchanges) if rooms is not None else 0)


def _latency(server: SignalingServer) -> list[HistogramSample]:
    return [((method,), h) for method, h in sorted(server.counts.latency.items())]


def _cluster_value(read: Callable[[Any], float]) -> Callable[[SignalingServer], list[Sample]]:
    def value(server: SignalingServer) -> list[Sample]:
        cluster = server.cluster
        return [] if cluster is None else _one(read(cluster))

    return value


def _media_exchanges(server: SignalingServer) -> list[Sample]:
    rooms = server._rooms
    by: dict[tuple[str, str], int] = {}
    if rooms is not None:
        for upstream in rooms._upstreams.values():
            key = ("upstream", upstream.state.value)
            by[key] = by.get(key, 0) + 1
            for exchange in upstream.subscriptions.values():
                key = ("subscription", exchange.state.value)
                by[key] = by.get(key, 0) + 1
    return [(key, float(n)) for key, n in sorted(by.items())]


def _media_errors(server: SignalingServer) -> list[Sample]:
    return [
        ((*error_labels(code), reason), float(n))
        for (code, reason), n in sorted(server.counts.media_errors.items())
    ]


def _media_up(server: SignalingServer) -> list[Sample]:
    node = server.media_node
    return _one(1.0 if node is not None and node.healthy else 0.0)


# The relay's message kinds (_relay.py) by their names.
_KINDS = {"o": "open", "f": "frame", "x": "gone", "w": "write", "cl": "close", "ab": "abort"}
_KINDS.update(j="joined", t="take", d="drain")


def _relayed(server: SignalingServer) -> list[Sample]:
    merged: dict[tuple[str, str], int] = {}
    for (direction, kind), n in server.counts.relayed.items():
        key = (direction, _KINDS.get(kind, "other"))
        merged[key] = merged.get(key, 0) + n
    return [(key, float(n)) for key, n in sorted(merged.items())]


def _relay_flush(server: SignalingServer) -> list[HistogramSample]:
    return [((), server.counts.relay_flush)] if server.cluster is not None else []


def _relay_latency(server: SignalingServer) -> list[HistogramSample]:
    return [((), server.counts.relay_latency)] if server.cluster is not None else []


METRICS: list[Metric] = [
    Metric(
        "roomsignal_connections",
        "gauge",
        "WebSocket connections open on this node.",
        (),
        _connections,
    ),
    Metric(
        "roomsignal_sessions",
        "gauge",
        "Sessions (rooms) held by this node.",
        (),
        _sessions,
    ),
    Metric(
        "roomsignal_participants",
        "gauge",
        "Seats held by this node, by participant type, and whether connected "
        "(false: waiting to be resumed within resume_window).",
        ("type", "connected"),
        _participants,
    ),
    Metric(
        "roomsignal_exchanges",
        "gauge",
        "SDP exchanges open on this node (subscriptions being negotiated or established).",
        (),
        _exchanges,
    ),
    Metric(
        "roomsignal_joins",
        "counter",
        "Fresh joins (a new seat), by participant type.",
        ("type",),
        lambda s: _table(s.counts.joins),
    ),
    Metric(
        "roomsignal_leaves",
        "counter",
        "Seats ended, by reason: participantLeft's (left, disconnected), or sessionClosed "
        "(their session was closed: closeSession, or the server's shutdown).",
        ("reason",),
        lambda s: _table(s.counts.leaves),
    ),
    Metric(
        "roomsignal_resumes",
        "counter",
        "Joins that resumed a seat (resumed: true).",
        (),
        lambda s: _one(s.counts.resumes),
    ),
    Metric(
        "roomsignal_state_resets",
        "counter",
        "Resumes refused with 106, so the client starts afresh (state reset), by reason "
        "(replayGap: the replay buffer no longer holds what it missed; unknownSecret: "
        "its seat is gone).",
        ("reason",),
        lambda s: _table(s.counts.state_resets),
    ),
    Metric(
        "roomsignal_replay_gaps",
        "counter",
        "Resumes whose lastSeq was older than the replay buffer holds.",
        (),
        lambda s: _one(s.counts.replay_gaps),
    ),
    Metric(
        "roomsignal_notifications",
        "counter",
        "Notifications numbered for participants (seq assigned; written, or kept for a resume).",
        (),
        _notifications,
    ),
    Metric(
        "roomsignal_frames_written",
        "counter",
        "Frames (responses and notifications) written to this node's links, "
        "simulated bursts aside.",
        (),
        lambda s: _one(s._sent),
    ),
    Metric(
        "roomsignal_bytes_written",
        "counter",
        "Bytes of WebSocket frames handed to this node's sockets.",
        (),
        lambda s: _one(s.counts.bytes_written),
    ),
    Metric(
        "roomsignal_slow_consumer_evictions",
        "counter",
        "Connections closed with 4002 (slow): their unsent output passed max_send_queue_bytes.",
        (),
        lambda s: _one(s.counts.evictions),
    ),
    Metric(
        "roomsignal_refused_handshakes",
        "counter",
        "Handshakes answered HTTP 503 (max_connections reached, or the node drains).",
        (),
        lambda s: _one(s.counts.refused),
    ),
    Metric(
        "roomsignal_errors",
        "counter",
        "Catalog errors this node sent: as the answer to a request (via=answer) or as a "
        "sessionError notification (via=push, one per recipient). A code outside the "
        "catalog is code=other.",
        ("code", "name", "via"),
        _errors,
    ),
    Metric(
        "roomsignal_request_seconds",
        "histogram",
        "Time the server took to handle a request, from its decoded frame to the effects "
        "carried out, by method (plain pings take a shortcut and are counted apart).",
        ("method",),
        _latency,
    ),
    Metric(
        "roomsignal_pings",
        "counter",
        "Plain pings answered by the shortcut (not timed).",
        (),
        lambda s: _one(s.counts.pings),
    ),
    Metric(
        "roomsignal_cluster_redis_up",
        "gauge",
        "1 if Redis answered this node's last beat, else 0.",
        (),
        _cluster_value(lambda c: 1.0 if c.healthy else 0.0),
        cluster=True,
    ),
    Metric(
        "roomsignal_cluster_redis_commands",
        "counter",
        "Redis commands this node sent (scripts and publishes).",
        (),
        _cluster_value(lambda c: float(c.round_trips)),
        cluster=True,
    ),
    Metric(
        "roomsignal_cluster_relayed",
        "counter",
        "Relay messages between nodes, by direction (sent, received) and kind "
        "(open, frame, gone, write, joined, close, abort, take, drain).",
        ("direction", "kind"),
        _relayed,
        cluster=True,
    ),
    Metric(
        "roomsignal_cluster_relay_seconds",
        "histogram",
        "Relay latency: from another node's send of a relayed frame (edge to home) or of "
        "frames to write (home to edge) to this node's reader taking it, by the two nodes' "
        "wall clocks (keep them in sync, e.g. NTP).",
        (),
        _relay_latency,
        cluster=True,
    ),
    Metric(
        "roomsignal_cluster_relay_flush_seconds",
        "histogram",
        "Time of one pipeline to Redis carrying relay messages and journal writes (the "
        "part of a relayed frame's latency this node spends).",
        (),
        _relay_flush,
        cluster=True,
    ),
    Metric(
        "roomsignal_cluster_rooms_homed",
        "gauge",
        "Rooms whose lease this node holds.",
        (),
        _cluster_value(lambda c: float(len(c._homed))),
        cluster=True,
    ),
    Metric(
        "roomsignal_cluster_takeovers",
        "counter",
        "Rooms this node took over from another node (loaded from the journal).",
        (),
        lambda s: [] if s.cluster is None else _one(s.counts.takeovers),
        cluster=True,
    ),
    Metric(
        "roomsignal_media_node_up",
        "gauge",
        "1 while this server has a session on its media node (Janus), else 0 (/healthz "
        "answers 503 meanwhile).",
        (),
        _media_up,
        media=True,
    ),
    Metric(
        "roomsignal_media_node_losses",
        "counter",
        "Times this server lost its media node session (its connection closed, or a "
        "keepalive went unanswered): every exchange through it ended.",
        (),
        lambda s: _one(s.counts.media_losses),
        media=True,
    ),
    Metric(
        "roomsignal_media_node_exchanges",
        "gauge",
        "Exchanges through the media node now, by kind (upstream: a publisher's upload; "
        "subscription) and state (upstream: awaiting-offer, negotiating, connecting, up; "
        "subscription: awaiting-offer, awaiting-answer, established).",
        ("kind", "state"),
        _media_exchanges,
        media=True,
    ),
    Metric(
        "roomsignal_media_node_exchanges_opened",
        "counter",
        "Exchanges opened through the media node, by kind (upstream, subscription).",
        ("kind",),
        lambda s: _table(s.counts.media_opened),
        media=True,
    ),
    Metric(
        "roomsignal_media_node_errors",
        "counter",
        "Errors this server sent because of its media node, by code and reason: 801 "
        "unreachable, timeout, connectionClosed (answers) and mediaNodeLost (one per "
        "participant told, a takeover's included); 802 response (an answer it cannot use); "
        "303 refused (the media node refused the participant's SDP).",
        ("code", "name", "reason"),
        _media_errors,
        media=True,
    ),
    Metric(
        "roomsignal_draining",
        "gauge",
        "1 while this node drains (SIGTERM in a cluster): /healthz and /readyz answer 503.",
        (),
        lambda s: _one(1.0 if s.draining else 0.0),
    ),
]
"""Every metric of ``GET /metrics`` (besides prometheus_client's process_* and python_*)."""


def render_markdown() -> str:
    """The metrics list of docs/operations.md, generated from ``METRICS``."""
    lines = ["| metric | type | labels | what it counts |", "|---|---|---|---|"]
    for metric in METRICS:
        name = metric.name + ("_total" if metric.kind == "counter" else "")
        labels = ", ".join(f"`{label}`" for label in metric.labels) or "-"
        help_text = metric.help + (" Cluster nodes only." if metric.cluster else "")
        help_text += " Servers with a media node only." if metric.media else ""
        lines.append(f"| `{name}` | {metric.kind} | {labels} | {help_text} |")
    return "\n".join(lines) + "\n"


# --- prometheus_client: imported only to serve /metrics ---------------------------------


def metrics_available() -> bool:
    """Whether ``prometheus_client`` (the ``metrics`` extra) can be imported."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


def make_registry(server: SignalingServer) -> Any:
    """A ``CollectorRegistry`` with ``server``'s metrics and the process' own.

    Raises ``ImportError`` without the ``metrics`` extra.
    """
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )
    from prometheus_client.core import (
        Metric as Family,
    )
    from prometheus_client.gc_collector import GCCollector
    from prometheus_client.platform_collector import PlatformCollector
    from prometheus_client.process_collector import ProcessCollector
    from prometheus_client.registry import Collector

    class ServerCollector(Collector):
        """Reads ``METRICS`` off the server at each scrape."""

        def collect(self) -> Iterator[Family]:
            for metric in METRICS:
                if metric.cluster and server.cluster is None:
                    continue
                if metric.media and server.media_node_url is None:
                    continue
                labels = list(metric.labels)
                family: Family
                if metric.kind == "histogram":
                    hist = HistogramMetricFamily(metric.name, metric.help, labels=labels)
                    for values, h in metric.read(server):
                        hist.add_metric(list(values), h.cumulative(), h.total)
                    family = hist
                else:
                    make = CounterMetricFamily if metric.kind == "counter" else GaugeMetricFamily
                    family = make(metric.name, metric.help, labels=labels)
                    for values, value in metric.read(server):
                        family.add_metric(list(values), value)
                yield family

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector())
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def exposition(registry: Any) -> tuple[bytes, str]:
    """The text exposition of ``registry`` and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry), CONTENT_TYPE_LATEST
