"""Server benchmarks: fan-out, joins per second, memory per participant.

Run by ``run.py`` (``--only server``; part of every full or ``--quick`` run).
The servers live in their own processes (``servers.py ref`` and ``echo``,
``server_peers.py broadcast``); this process is the client, with bare
websockets connections and hand-written frames, so that what is measured is
the server.

- ``fanout_ratio``: one member of a room of ``members`` sends ``messages``
  chat messages at once; notifications per second until every other member
  has every message, on the reference server, divided by the same for a bare
  websockets server that ``broadcast()``s the very frames the reference
  server wrote (``server_peers.py``), in the same run. Target >= 0.8. The
  reference server's per-sender pacing (``max_fanout_per_second``) is off
  here: it is a cap the operator sets, not what the server can do.
- ``server_joins_per_s``: ``joins`` participants join ``rooms`` rooms (at
  most ``concurrency`` joins in flight), each client reading what it is sent.
- ``server_kib_per_participant``: the reference server's RSS growth per
  joined participant (after the joins, and the ``participantJoined``
  notifications they caused, have all been delivered), beside
  ``bare_kib_per_connection``: a bare websockets echo server's RSS growth
  per open connection that has exchanged one frame. Target: ratio <= 1.5.

Every loop is bounded in count and time, and only dials 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from picows import WSListener, WSMsgType, ws_connect

HERE = Path(__file__).resolve().parent
SUBPROTOCOL = "roomsignal.v1"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
MESSAGE_MARK = b'"messageReceived"'
JOINED_MARK = b'"participantJoined"'
TEXT = "x" * 64  # a short chat line

TARGETS: list[tuple[str, str, float, str]] = [
    ("fanout_ratio", ">=", 0.8, "reference fan-out notifications/s / bare broadcast()"),
    ("server_kib_ratio", "<=", 1.5, "server KiB per participant / per bare connection"),
]


@dataclass(frozen=True)
class ServerConfig:
    members: int  # in the fan-out room
    messages: int  # per fan-out burst
    reps: int
    joins: int
    rooms: int
    concurrency: int


FULL = ServerConfig(members=500, messages=200, reps=5, joins=10_000, rooms=100, concurrency=100)
QUICK = ServerConfig(members=200, messages=50, reps=2, joins=1_000, rooms=10, concurrency=100)


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE


def cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _request(request_id: int, method: str, params: dict[str, Any]) -> bytes:
    text = json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params},
        separators=(",", ":"),
    )
    return text.encode()


class Member(WSListener):  # type: ignore[misc]
    """One bare client (picows): counts what it is sent; keeps one chat frame as a sample.

    picows calls ``on_ws_frame`` straight from the read, with no task or
    queue per message, so 500 of these cost the client less than the
    servers they measure (with websockets' own client, the client was the
    bottleneck: both servers idled at about 30 % CPU).
    """

    def __init__(self) -> None:
        self.transport: Any = None
        self.messages = 0
        self.joined = 0
        self.sample: bytes | None = None
        self.target = 0
        self.reached = asyncio.Event()
        self.reply: asyncio.Future[bytes] | None = None
        self.on_joined: Callable[[], None] = lambda: None

    def on_ws_connected(self, transport: Any) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        if frame.msg_type != WSMsgType.TEXT:
            return
        payload = frame.get_payload_as_bytes()
        if MESSAGE_MARK in payload:
            self.messages += 1
            if self.sample is None:
                self.sample = payload
            if self.messages == self.target:
                self.reached.set()
        elif JOINED_MARK in payload:
            self.joined += 1
            self.on_joined()
        elif self.reply is not None and not self.reply.done():
            self.reply.set_result(payload)

    def send(self, frame: bytes) -> None:
        self.transport.send(WSMsgType.TEXT, frame)

    async def ask(self, frame: bytes) -> bytes:
        """Send a request; the next frame that is neither chat nor a join notice."""
        self.reply = asyncio.get_running_loop().create_future()
        self.send(frame)
        return await self.reply

    def stop(self) -> None:
        if self.transport is not None:
            self.transport.disconnect()  # the server is stopped next: no close handshake


async def _open(url: str) -> Member:
    _, member = await ws_connect(
        Member,
        url,
        extra_headers={"Sec-WebSocket-Protocol": SUBPROTOCOL},
        websocket_handshake_timeout=60,
        max_frame_size=2**24,
    )
    assert isinstance(member, Member)
    return member


async def _join(member: Member, token: str, name: str) -> None:
    params = {"token": token, "name": name, "participantType": "viewer"}
    reply = await member.ask(_request(1, "join", params))
    if b'"result"' not in reply:
        raise RuntimeError(f"join refused: {reply[:300]!r}")


async def _bounded(count: int, work: Callable[[int], Any], concurrency: int) -> list[Any]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int) -> Any:
        async with semaphore:
            return await work(index)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


class _Tally:
    """Counts ``participantJoined`` frames over all members; sets ``done`` at ``goal``."""

    def __init__(self, goal: int) -> None:
        self.goal = goal
        self.seen = 0
        self.done = asyncio.Event()
        if goal == 0:
            self.done.set()

    def __call__(self) -> None:
        self.seen += 1
        if self.seen >= self.goal:
            self.done.set()


async def _room(url: str, tokens: list[str], per_room: int, concurrency: int) -> list[Member]:
    """Join ``len(tokens) * per_room`` members, room by room token; every reader started.

    Returns once every ``participantJoined`` the joins caused has been read.
    """
    tally = _Tally(len(tokens) * per_room * (per_room - 1) // 2)

    async def one(index: int) -> Member:
        member = await _open(url)
        member.on_joined = tally
        await _join(member, tokens[index // per_room], f"m{index}")
        return member

    members = await _bounded(len(tokens) * per_room, one, concurrency)
    await tally.done.wait()
    return members


async def _burst(members: list[Member], frames: list[bytes]) -> float:
    """The sender (members[0]) sends ``frames``; seconds until every other has them all."""
    sender, receivers = members[0], members[1:]
    for member in receivers:
        member.target = member.messages + len(frames)
        member.reached.clear()
    start = time.perf_counter()
    for frame in frames:
        sender.send(frame)
    await asyncio.gather(*(m.reached.wait() for m in receivers))
    return time.perf_counter() - start


async def fanout(
    ref_url: str,
    ref_pid: int,
    bare_url: str,
    bare_pid: int,
    token: str,
    cfg: ServerConfig,
    timeout: float,
) -> dict[str, Any]:
    """Both fan-outs, interleaved rep by rep; the ratio of their medians."""
    async with asyncio.timeout(timeout):
        ref = await _room(ref_url, [token], cfg.members, cfg.concurrency)
        bare = [await _open(bare_url) for _ in range(cfg.members)]
        try:
            # Ids unique for the sender's seat: a repeated one would be answered
            # from the seat's answer cache and not sent again (protocol.md section 8).
            ids = itertools.count(100)

            def messages(n: int) -> list[bytes]:
                return [_request(next(ids), "sendMessage", {"text": TEXT}) for _ in range(n)]

            await _burst(ref, messages(1))  # warm both, and get a frame to broadcast
            sample = next(m.sample for m in ref[1:] if m.sample is not None)
            copies = [sample] * cfg.messages
            await _burst(bare, copies[:1])
            ref_rates, bare_rates, ref_cpu, bare_cpu, client = [], [], [], [], []
            deliveries = cfg.messages * (cfg.members - 1)
            for _ in range(cfg.reps):
                requests = messages(cfg.messages)
                cpu, mine = cpu_of(ref_pid), time.process_time()
                seconds = await _burst(ref, requests)
                client.append((time.process_time() - mine) / seconds)
                ref_rates.append(deliveries / seconds)
                ref_cpu.append((cpu_of(ref_pid) - cpu) / deliveries * 1e6)
                cpu = cpu_of(bare_pid)
                seconds = await _burst(bare, copies)
                bare_rates.append(deliveries / seconds)
                bare_cpu.append((cpu_of(bare_pid) - cpu) / deliveries * 1e6)
        finally:
            for member in ref + bare:
                member.stop()
    ref_rate, bare_rate = statistics.median(ref_rates), statistics.median(bare_rates)
    return {
        "fanout_members": cfg.members,
        "fanout_messages": cfg.messages,
        "fanout_notifications_per_s": ref_rate,
        "bare_fanout_notifications_per_s": bare_rate,
        "fanout_runs": ref_rates,
        "bare_fanout_runs": bare_rates,
        # server CPU (user + system, 10 ms ticks) per notification: little disturbed
        # by other processes on the machine, unlike the rates
        "fanout_server_cpu_us": statistics.median(ref_cpu),
        "fanout_server_cpu_runs": ref_cpu,  # metrics_cost.py averages them (finer than a tick)
        "bare_fanout_server_cpu_us": statistics.median(bare_cpu),
        "fanout_frame_bytes": len(sample),
        # near 1.0, the client (not the server) limits the rate
        "fanout_client_cpu_share": statistics.median(client),
    }


async def joins(
    url: str, pid: int, secret: str, cfg: ServerConfig, timeout: float
) -> dict[str, Any]:
    """Join ``cfg.joins`` participants over ``cfg.rooms`` rooms; rate, CPU, RSS per participant."""
    from roomsignal.tokens import mint

    run = time.monotonic_ns()
    per_room = cfg.joins // cfg.rooms
    tokens = [mint(secret, f"joins-{run}-{room}", ttl=3600) for room in range(cfg.rooms)]
    async with asyncio.timeout(timeout):
        warm = await _room(url, [mint(secret, f"warm-{run}", ttl=3600)], 2, 2)
        for member in warm:
            member.stop()
        before, cpu = rss_of(pid), cpu_of(pid)
        start = time.perf_counter()
        members = await _room(url, tokens, per_room, cfg.concurrency)
        seconds = time.perf_counter() - start
        used = cpu_of(pid) - cpu
        after = rss_of(pid)
        for member in members:
            member.stop()
    count = len(members)
    return {
        "server_joins": count,
        "server_join_rooms": cfg.rooms,
        "server_joins_per_s": count / seconds,
        "server_join_cpu_us": used / count * 1e6,
        "server_kib_per_participant": (after - before) / 1024 / count,
        "server_rss_before_mib": before / 2**20,
        "server_rss_after_mib": after / 2**20,
    }


async def bare_connections(
    url: str, pid: int, count: int, concurrency: int, timeout: float
) -> dict[str, Any]:
    """Open ``count`` connections to the echo server, one frame each; its RSS growth per one."""
    frame = _request(1, "join", {"token": "t" * 180, "name": "m0", "participantType": "viewer"})

    async def one(_index: int) -> Member:
        member = await _open(url)
        await member.ask(frame)
        return member

    async with asyncio.timeout(timeout):
        warm = await one(0)
        warm.stop()
        before = rss_of(pid)
        opened = await _bounded(count, one, concurrency)
        after = rss_of(pid)
        for member in opened:
            member.stop()
    return {
        "bare_connections": len(opened),
        "bare_kib_per_connection": (after - before) / 1024 / len(opened),
    }


# --- hooked into run.py ---------------------------------------------------------------


@contextlib.contextmanager
def _started(
    process_cls: Any, kind: str, *args: str, script: str, cpu: int | None
) -> Iterator[Any]:
    process = process_cls(kind, *args, cpu=cpu, script=script)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def run(
    results: dict[str, Any],
    *,
    quick: bool,
    secret: str,
    cpu: int | None,
    process_cls: Any,
    step: Callable[[dict[str, Any], str, Any], None],
) -> None:
    """Every server benchmark, each on fresh server processes; results into ``results``."""
    from roomsignal.tokens import mint

    cfg = QUICK if quick else FULL
    timeout = 300.0
    ref_args = ("--secret", secret, "--max-sessions", str(cfg.rooms + 100))

    def fan() -> dict[str, Any]:
        with (
            _started(process_cls, "ref", *ref_args, script="server_peers.py", cpu=cpu) as ref,
            _started(process_cls, "broadcast", script="server_peers.py", cpu=cpu) as bare,
        ):
            token = mint(secret, "fanout", ttl=3600)
            return asyncio.run(
                fanout(ref.url, ref.proc.pid, bare.url, bare.proc.pid, token, cfg, timeout)
            )

    def join() -> dict[str, Any]:
        with _started(process_cls, "ref", *ref_args, script="servers.py", cpu=cpu) as ref:
            return asyncio.run(joins(ref.url, ref.proc.pid, secret, cfg, timeout))

    def bare() -> dict[str, Any]:
        with _started(process_cls, "echo", script="servers.py", cpu=cpu) as echo:
            return asyncio.run(
                bare_connections(echo.url, echo.proc.pid, cfg.joins, cfg.concurrency, timeout)
            )

    step(results, "server fan-out", fan)
    step(results, "server joins", join)
    step(results, "server memory (bare websockets)", bare)


def derive(results: dict[str, Any]) -> None:
    """The ratios of the server targets."""
    g = results.get
    ref, bare = g("fanout_notifications_per_s"), g("bare_fanout_notifications_per_s")
    results["fanout_ratio"] = ref / bare if ref and bare else None
    ref, bare = g("fanout_server_cpu_us"), g("bare_fanout_server_cpu_us")
    results["fanout_cpu_ratio"] = bare / ref if ref and bare else None
    ref, bare = g("server_kib_per_participant"), g("bare_kib_per_connection")
    results["server_kib_ratio"] = ref / bare if ref is not None and bare else None


def rows(
    g: Callable[[str], Any], fmt: Callable[..., str]
) -> list[tuple[str, str, str, str, str, str | None]]:
    """The server rows of run.py's table."""
    members = g("fanout_members") or 0
    return [
        (f"fan-out to {members} members, notif/s", fmt(g("fanout_notifications_per_s")), "bare ws broadcast()", fmt(g("bare_fanout_notifications_per_s")), fmt(g("fanout_ratio")), "fanout_ratio"),
        ("  server CPU us/notification (ratio inverted)", fmt(g("fanout_server_cpu_us")), "bare ws broadcast()", fmt(g("bare_fanout_server_cpu_us")), fmt(g("fanout_cpu_ratio")), None),
        (f"server joins/s ({g('server_joins') or 0} over {g('server_join_rooms') or 0} rooms)", fmt(g("server_joins_per_s")), "", "", "", None),
        ("server RSS per participant, KiB", fmt(g("server_kib_per_participant")), "bare ws connection", fmt(g("bare_kib_per_connection")), fmt(g("server_kib_ratio")), "server_kib_ratio"),
    ]  # fmt: skip
