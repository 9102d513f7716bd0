"""The engine behind ``roomsignal load-test``: bots, their schedule, and what they measured.

``LoadTest(plan).run()`` joins ``plan.participants`` bots spread over
``plan.rooms`` rooms at ``plan.join_rate`` joins per second, then for
``plan.duration`` seconds each room chats at ``plan.message_rate`` messages
per second (its bots alternate), each room's synchronizer sends sync data
once a second, and ``--chaos`` cuts a random bot's connection ``chaos``
times per second through ``simulateScenario`` ``connectionDrop``. Then it
waits (bounded) until every confirmed message has reached every other bot of
its room, closes every session and returns a report (a plain dict, the
``--json`` object). With several URLs (``plan.urls``, a cluster's nodes)
bot ``i`` is given them all, starting at ``urls[i % len(urls)]``: the bots
are spread over the nodes, and each fails over to the next (``Session``).

Only the public ``roomsignal.Session`` API is used. Every chat text is a JSON
object ``{"lt": run, "b": bot, "n": seq, "t": sent}``: the bot's index, its
own message number (1, 2, 3 ...) and ``time.perf_counter()`` when it was
sent. Every receiver checks the numbers: a confirmed message (its
``sendMessage`` answered) that never arrived is *lost*, one that arrived
twice is *duplicated*. A send whose answer was cut by a drop (901) is
*unconfirmed*: the server may or may not have taken it, so it is neither
expected nor counted lost, but still counted duplicated if it arrives twice.
Over *every* message the app sent (confirmed or not), ``lost_any`` counts
the deliveries to a room's other bots that never happened, and
``out_of_order`` the arrivals of a bot's message after a later one of the
same sender. ``reconnect_ms`` is how long each bot was away (from its first
reconnection attempt to its ``Reconnected``); ``reconnect_spans`` lists them
as wall-clock ``[down, back]`` pairs (``time.time()``), for a harness that
knows when it broke something.

Everything runs in one ``asyncio.TaskGroup``; the whole run is bounded by a
deadline computed from the plan, so it always stops by itself.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import math
import random
import secrets
import time
from array import array
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import Any

from roomsignal.client import Reconnected, Reconnecting, ReconnectPolicy, Session, SessionState
from roomsignal.errors import SessionError, SessionErrorException
from roomsignal.events import MessageReceivedParams
from roomsignal.tokens import mint

__all__ = ["LoadPlan", "LoadTest", "histogram", "percentiles"]

SYNC_INTERVAL = 1.0  # seconds between a room's sync data updates
DRAIN_TIMEOUT = 15.0  # seconds to wait for the last messages after the chat ends
_POLL = 0.05  # how often the drain checks (a tool's wait, not a test's)
_DROP = "connectionDrop"
_CONNECTION_LOST = 901  # GENERIC_CONNECTION_ERROR: the answer a dropped request gets


@dataclass(frozen=True)
class LoadPlan:
    """What to run; checked by the command before it gets here."""

    url: str
    secret: str
    rooms: int
    participants: int  # in all, spread over the rooms
    publishers: int = 0  # in all, spread over the rooms first
    join_rate: float = 50.0  # joins per second
    duration: float = 10.0  # seconds of chat after the joins
    message_rate: float = 1.0  # messages per second per room
    chaos: float = 0.0  # connection drops per second, over the whole run
    timeout: float = 10.0  # connect, request and close bound per bot
    seed: int | None = None
    media: bool = False  # publishers send real video (roomsignal.media), the others receive
    ssl: SSLContext | None = None  # for a wss:// server (--ca-file)
    urls: tuple[str, ...] = ()  # several servers (a cluster's nodes): ``url`` is the first

    def deadline(self) -> float:
        """Seconds after which the run is cut short, whatever happens."""
        joins = self.participants / self.join_rate + 2 * self.timeout
        pairs = self.publishers * self.participants  # at most this many subscriptions, 4 at a time
        media = self.timeout * (2 + pairs / 4) if self.media else 0.0
        return joins + media + self.duration + 2 * self.timeout + DRAIN_TIMEOUT + 2 * self.timeout


def percentiles(samples: Sequence[float], scale: float = 1000.0) -> dict[str, Any]:
    """p50/p95/p99/max/mean of ``samples`` (seconds) in ms (nearest rank); None when empty."""
    ordered = sorted(samples)
    count = len(ordered)
    if not count:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * count) - 1)] * scale

    return {
        "count": count,
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "max": ordered[-1] * scale,
        "mean": sum(ordered) / count * scale,
    }


HISTOGRAM_EDGES_MS = [round(0.01 * 10 ** (k / 10), 6) for k in range(61)]  # 0.01 ms .. 10 s


def histogram(
    samples: Sequence[float], scale: float = 1000.0
) -> dict[str, list[float] | list[int]]:
    """Counts of ``samples`` (seconds) per log-spaced bin of ``HISTOGRAM_EDGES_MS``.

    Bin ``i`` holds ``edges[i] <= ms < edges[i + 1]``; the first and last bins
    also take what falls below and above the range, so no sample is dropped.
    """
    edges = HISTOGRAM_EDGES_MS
    counts = [0] * (len(edges) - 1)
    for sample in samples:
        index = bisect.bisect_right(edges, sample * scale) - 1
        counts[min(max(index, 0), len(counts) - 1)] += 1
    return {"edges_ms": list(edges), "counts": counts}


@dataclass(eq=False)
class _Bot:
    index: int
    room: int
    name: str
    synchronizer: bool
    publisher: bool
    session: Session
    joined: bool = False
    sent: int = 0  # the last message number used
    confirmed: set[int] = field(default_factory=set)
    unconfirmed: set[int] = field(default_factory=set)
    received: dict[int, set[int]] = field(default_factory=dict)  # sender index -> numbers
    highest: dict[int, int] = field(default_factory=dict)  # sender index -> highest number
    duplicated: int = 0
    out_of_order: int = 0
    down_at: float = 0.0  # wall clock of the first reconnection attempt of this absence


@dataclass
class Snapshot:
    """Counters for the live progress display, read while the run goes on."""

    phase: str = "starting"
    joined: int = 0
    join_failures: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    drops: int = 0
    reconnections: int = 0
    errors: int = 0
    phase_started: float = 0.0
    phase_length: float = 0.0


class LoadTest:
    """One load-test run (see the module docstring); ``await run()`` once."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self.snapshot = Snapshot()
        self._run_id = secrets.token_hex(4)
        self._rng = random.Random(plan.seed)
        self._bots: list[_Bot] = []
        self._join_latency: list[float] = []
        self._message_latency = array("d")
        self._errors: Counter[tuple[int, str]] = Counter()
        self._resumed = 0
        self._state_resets = 0
        self._replayed = 0
        self._spans: list[tuple[float, float]] = []  # (down, back), wall clock
        self._sync_sent = 0
        self._chaos_available: bool | None = None
        self._started = 0.0
        # (sender, number) -> receivers that have it; outstanding = confirmed deliveries due
        self._seen: Counter[tuple[int, int]] = Counter()
        self._peers: dict[int, int] = {}
        self._outstanding = 0
        self._media: Any = None
        self._stopping = asyncio.Event()
        if plan.media:
            from roomsignal.cli._load_media import MediaLoad

            self._media = MediaLoad(plan.timeout)

    # -- the run -------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Run the plan; returns the report. Never leaves a session open.

        ``stop()`` ends it early: the phase under way is cancelled, every bot
        leaves, and the report (``interrupted``) covers what ran.
        """
        plan = self.plan
        self._started = time.perf_counter()
        phases: dict[str, float] = {}
        work = asyncio.ensure_future(self._phases(phases))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait(
                {work, stopping}, timeout=plan.deadline(), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (work, stopping):
                task.cancel()
            await asyncio.gather(work, stopping, return_exceptions=True)
        interrupted = cut_short = False
        if not work.cancelled():
            drained, chat_s, notes_in_chat = work.result()
        else:
            interrupted = self._stopping.is_set()
            cut_short = not interrupted
            drained, chat_s, notes_in_chat = False, 0.0, 0
        interrupted_in = self.snapshot.phase
        notifications = self._notifications()
        self._phase("closing", plan.timeout)
        if self._media is not None:
            await self._media.close()
        await self._close_all()
        phases["total_s"] = time.perf_counter() - self._started
        report = self._report(phases, drained, cut_short, chat_s, notes_in_chat, notifications)
        report["interrupted"] = interrupted_in if interrupted else None
        report["ok"] = report["ok"] and not interrupted
        return report

    def stop(self) -> None:
        """End the run early (Ctrl-C): ``run()`` closes every bot and returns its report."""
        self._stopping.set()

    async def _phases(self, phases: dict[str, float]) -> tuple[bool, float, int]:
        """Join, (subscribe,) chat, drain; (drained, chat seconds, notifications in the chat)."""
        plan = self.plan
        self._phase("joining", plan.participants / plan.join_rate)
        await self._join_all()
        phases["join_s"] = time.perf_counter() - self._started
        if self._media is not None:
            self._phase("subscribing", plan.timeout)
            await self._subscribe_all()
            phases["subscribe_s"] = time.perf_counter() - self._started
            await self._media.start_span()
        seq_before = self._notifications()
        chat_start = time.perf_counter()
        self._phase("chatting", plan.duration)
        await self._chat()
        chat_s = time.perf_counter() - chat_start
        phases["chat_s"] = chat_s
        if self._media is not None:
            await self._media.end_span()
        notes_in_chat = self._notifications() - seq_before
        self._phase("draining", DRAIN_TIMEOUT)
        drain_start = time.perf_counter()
        drained = await self._drain()
        phases["drain_s"] = time.perf_counter() - drain_start
        return drained, chat_s, notes_in_chat

    def _phase(self, name: str, length: float) -> None:
        self.snapshot.phase = name
        self.snapshot.phase_started = time.perf_counter()
        self.snapshot.phase_length = length

    def _notifications(self) -> int:
        # seq counts every notification a participant was sent, across reconnections
        return sum(bot.session.last_seq for bot in self._bots if bot.joined)

    # -- joins ---------------------------------------------------------------------

    def _make_bot(self, index: int) -> _Bot:
        plan = self.plan
        room = index % plan.rooms
        synchronizer = index < plan.rooms  # the first bot of each room
        publisher = index < plan.publishers
        per_room = math.ceil(plan.publishers / plan.rooms) if plan.publishers else 0
        token = mint(
            plan.secret,
            f"loadtest-{self._run_id}-{room}",
            ttl=max(3600, int(plan.deadline()) * 2),
            roles=["synchronizer"] if synchronizer else [],
            max_streaming=max(1, per_room),
        )
        name = f"bot-{index}"
        urls = plan.urls or (plan.url,)
        first = index % len(urls)
        session = Session(
            [*urls[first:], *urls[:first]] if len(urls) > 1 else urls[0],
            token=token,
            name=name,
            participant_type="full" if publisher else "viewer",
            reconnect=ReconnectPolicy(initial_delay=0.05, max_delay=1.0, max_attempts=20),
            request_timeout=plan.timeout,
            open_timeout=plan.timeout,
            close_timeout=min(2.0, plan.timeout),
            ssl=plan.ssl,
        )
        bot = _Bot(index, room, name, synchronizer, publisher, session)
        session.on_session_error(self._on_error)
        session.on_reconnecting(lambda event: self._on_reconnecting(bot, event))
        session.on_reconnected(lambda event: self._on_reconnected(event, bot))
        session.on_message(lambda event: self._on_message(bot, event))
        return bot

    async def _join_all(self) -> None:
        plan = self.plan
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with asyncio.TaskGroup() as group:
            for index in range(plan.participants):
                bot = self._make_bot(index)
                self._bots.append(bot)
                delay = start + index / plan.join_rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                group.create_task(self._join(bot))

    async def _join(self, bot: _Bot) -> None:
        began = time.perf_counter()
        try:
            await bot.session.connect()
        except (SessionErrorException, OSError, TimeoutError):
            self.snapshot.join_failures += 1
            return  # the error reached _on_error; a dial failure has no catalog code
        self._join_latency.append(time.perf_counter() - began)
        bot.joined = True
        self.snapshot.joined += 1
        if bot.publisher:
            with contextlib.suppress(SessionErrorException):
                if self._media is not None:
                    await self._media.publish(bot.session)
                else:
                    await bot.session.publish(audio=True, video=True)

    async def _subscribe_all(self) -> None:
        """--media: every other joined bot of a room subscribes to each of its publishers."""
        async with asyncio.TaskGroup() as group:
            for source in self._bots:
                if not (source.publisher and source.joined):
                    continue  # (participant_id raises 905 before a first join)
                target = source.session.participant_id
                for bot in self._bots:
                    if bot.joined and bot.room == source.room and bot is not source:
                        group.create_task(self._media.subscribe(bot.index, bot.session, target))

    # -- chat, sync, chaos ---------------------------------------------------------

    async def _chat(self) -> None:
        plan = self.plan
        present = Counter(bot.room for bot in self._bots if bot.joined)
        for bot in self._bots:
            if bot.joined:
                self._peers[bot.index] = present[bot.room] - 1
        async with asyncio.TaskGroup() as group:
            rooms: dict[int, list[_Bot]] = {}
            for bot in self._bots:
                if bot.joined:
                    rooms.setdefault(bot.room, []).append(bot)
            for members in rooms.values():
                if len(members) >= 2 and plan.message_rate > 0:
                    group.create_task(self._room_chat(members, group))
                synchronizer = next((bot for bot in members if bot.synchronizer), None)
                if synchronizer is not None:
                    group.create_task(self._sync(synchronizer))
            if plan.chaos > 0:
                group.create_task(self._chaos(group))

    async def _every(
        self,
        interval: float,
        count: int,
        action: Callable[[int], Coroutine[Any, Any, None] | None],
        group: asyncio.TaskGroup | None,
    ) -> None:
        """Call ``action(k)`` ``count`` times, ``interval`` apart (absolute schedule).

        A coroutine it returns runs as a task of ``group`` (so a slow answer
        never delays the schedule), or is awaited when ``group`` is None.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        for k in range(count):
            delay = start + k * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            work = action(k)
            if work is not None:
                if group is None:
                    await work
                else:
                    group.create_task(work)

    async def _room_chat(self, members: list[_Bot], group: asyncio.TaskGroup) -> None:
        plan = self.plan
        count = max(1, round(plan.message_rate * plan.duration))
        offset = self._rng.random() / plan.message_rate  # rooms do not all send at once
        await asyncio.sleep(offset)
        rotation = itertools.cycle(members)
        await self._every(
            1 / plan.message_rate, count, lambda _k: self._send(next(rotation)), group
        )

    async def _send(self, bot: _Bot) -> None:
        bot.sent += 1
        number = bot.sent
        text = json.dumps(
            {"lt": self._run_id, "b": bot.index, "n": number, "t": time.perf_counter()},
            separators=(",", ":"),
        )
        try:
            await bot.session.send_message(text)
        except SessionErrorException:
            bot.unconfirmed.add(number)  # the error itself reached _on_error
        else:
            bot.confirmed.add(number)
            self._outstanding += self._peers[bot.index] - self._seen[(bot.index, number)]
        self.snapshot.messages_sent += 1

    async def _sync(self, bot: _Bot) -> None:
        count = max(1, math.ceil(self.plan.duration / SYNC_INTERVAL))

        async def send(k: int) -> None:
            with contextlib.suppress(SessionErrorException):
                await bot.session.send_sync_data(
                    k * SYNC_INTERVAL, playing=True, media_id="loadtest"
                )
                self._sync_sent += 1

        await self._every(SYNC_INTERVAL, count, send, None)

    async def _chaos(self, group: asyncio.TaskGroup) -> None:
        plan = self.plan
        count = max(1, round(plan.chaos * plan.duration))

        def cut(_k: int) -> Coroutine[Any, Any, None] | None:
            if self._chaos_available is False:
                return None
            for _ in range(32):  # a few random picks, not a scan of every bot per cut
                bot = self._rng.choice(self._bots)
                if bot.joined and bot.session.state is SessionState.JOINED:
                    return self._drop(bot)
            return None

        await self._every(1 / plan.chaos, count, cut, group)

    async def _drop(self, bot: _Bot) -> None:
        try:
            await bot.session.simulate_scenario(_DROP)
            # Answered: sent again after the resume, and answered {} from the
            # server's cache (docs/protocol.md section 8): the drop happened.
            self._chaos_available = True
            self.snapshot.drops += 1
        except SessionErrorException as exc:
            if exc.code == _CONNECTION_LOST:  # the drop cut the request's own answer
                self._chaos_available = True
                self.snapshot.drops += 1
            elif exc.code == -32601 and self._chaos_available is None:
                self._chaos_available = False  # the server does not allow simulation

    # -- listeners -----------------------------------------------------------------

    def _on_error(self, error: SessionError) -> None:
        if error.method == "simulateScenario" and error.code in (_CONNECTION_LOST, -32601):
            return  # the expected answer to a chaos drop (or its refusal): not a failure
        self._errors[(error.code, error.name)] += 1
        self.snapshot.errors += 1

    def _on_reconnecting(self, bot: _Bot, event: Reconnecting) -> None:
        if not bot.down_at:
            bot.down_at = time.time()

    def _on_reconnected(self, event: Reconnected, bot: _Bot | None = None) -> None:
        if bot is not None and bot.down_at:
            self._spans.append((bot.down_at, time.time()))
            bot.down_at = 0.0
        self.snapshot.reconnections += 1
        if event.resumed:
            self._resumed += 1
            self._replayed += event.replayed
        else:
            self._state_resets += 1

    def _on_message(self, bot: _Bot, event: MessageReceivedParams) -> None:
        now = time.perf_counter()
        try:
            body = json.loads(event.text)
            if body.get("lt") != self._run_id:
                return
            sender, number, sent_at = int(body["b"]), int(body["n"]), float(body["t"])
        except (ValueError, TypeError, KeyError, AttributeError):
            return  # someone else's chat in the room
        seen = bot.received.setdefault(sender, set())
        if number in seen:
            bot.duplicated += 1
            return
        seen.add(number)
        if number < bot.highest.get(sender, 0):
            bot.out_of_order += 1
        else:
            bot.highest[sender] = number
        self._seen[(sender, number)] += 1
        if 0 <= sender < len(self._bots) and number in self._bots[sender].confirmed:
            self._outstanding -= 1
        self._message_latency.append(now - sent_at)
        self.snapshot.messages_received += 1

    # -- the end -------------------------------------------------------------------

    async def _drain(self) -> bool:
        """Wait until every confirmed message has arrived everywhere; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT
        while self._outstanding > 0:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(_POLL)
        return True

    async def _close_all(self) -> None:
        await asyncio.gather(*(bot.session.close() for bot in self._bots), return_exceptions=True)

    def _report(
        self,
        phases: dict[str, float],
        drained: bool,
        cut_short: bool,
        chat_s: float,
        notes_in_chat: int,
        notifications: int,
    ) -> dict[str, Any]:
        plan = self.plan
        joined = [bot for bot in self._bots if bot.joined]
        confirmed = sum(len(bot.confirmed) for bot in joined)
        unconfirmed = sum(len(bot.unconfirmed) for bot in joined)
        expected = sum(len(bot.confirmed) * self._peers.get(bot.index, 0) for bot in joined)
        lost = self._outstanding
        duplicated = sum(bot.duplicated for bot in joined)
        out_of_order = sum(bot.out_of_order for bot in joined)
        lost_any = 0  # every message the app sent, confirmed or not, to each other bot
        for sender in joined:
            peers = self._peers.get(sender.index, 0)
            for number in range(1, sender.sent + 1):
                lost_any += max(0, peers - self._seen[(sender.index, number)])
        spans = [back - down for down, back in self._spans]
        errors = [
            {"code": code, "name": name, "count": count}
            for (code, name), count in sorted(self._errors.items())
        ]
        total_s = phases.get("total_s", 0.0)
        return {
            "url": plan.url,
            "urls": list(plan.urls or (plan.url,)),
            "plan": {
                "rooms": plan.rooms,
                "participants": plan.participants,
                "publishers": plan.publishers,
                "join_rate": plan.join_rate,
                "duration": plan.duration,
                "message_rate": plan.message_rate,
                "chaos": plan.chaos,
            },
            "joined": len(joined),
            "join_failures": plan.participants - len(joined),
            "join_latency_ms": percentiles(self._join_latency),
            "message_latency_ms": percentiles(self._message_latency),
            "join_latency_histogram": histogram(self._join_latency),
            "message_latency_histogram": histogram(self._message_latency),
            "messages": {
                "sent": confirmed + unconfirmed,
                "confirmed": confirmed,
                "unconfirmed": unconfirmed,
                "expected_deliveries": expected,
                "delivered": len(self._message_latency),
                "lost": lost,
                "duplicated": duplicated,
                "lost_any": lost_any,
                "out_of_order": out_of_order,
            },
            "sync_sent": self._sync_sent,
            "notifications": notifications,
            "notifications_per_s": notes_in_chat / chat_s if chat_s > 0 else None,
            "errors": errors,
            "errors_total": sum(self._errors.values()),
            "reconnections": self._resumed + self._state_resets,
            "resumed": self._resumed,
            "state_resets": self._state_resets,
            "replayed": self._replayed,
            "reconnect_ms": percentiles(spans),
            "reconnect_spans": [[round(d, 3), round(b, 3)] for d, b in self._spans],
            "chaos": {
                "rate": plan.chaos,
                "available": self._chaos_available,
                "drops": self.snapshot.drops,
            },
            "media": None if self._media is None else self._media.report(percentiles),
            "drained": drained,
            "cut_short": cut_short,
            "phases_s": phases,
            "elapsed_s": total_s,
            "ok": (
                not cut_short
                and drained
                and lost == 0
                and duplicated == 0
                and out_of_order == 0
                and len(joined) == plan.participants
                and self._state_resets == 0
                and (self._media is None or self._media.all_subscribed())
            ),
        }
