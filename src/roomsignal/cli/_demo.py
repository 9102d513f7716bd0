"""``roomsignal demo``: bots in a watch-together session, and all 15 room errors.

Starts the reference server in-process on a free port (simulation allowed,
short limits), then runs bots through it over real loopback sockets: they
join, publish, subscribe and complete SDP exchanges with trickled ICE, chat
and sync playback; then they provoke every code of docs/protocol.md section 3
under its real condition (201 through ``simulateScenario internalError``).
Each error is printed as the bot's ``on_session_error`` listener receives
it; a summary table follows. Exit status 0 only if all 15 codes were seen.

Over 600 lines on purpose: the demo is a script of scenes, one function per
error code's real condition, read top to bottom like the output it prints;
``--media`` and ``--web`` live in ``_demo_media.py`` and ``_demo_web.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from roomsignal.catalog import ErrorCode, lookup
from roomsignal.cli._demo_web import add_web_options, run_demo_web
from roomsignal.cli._options import UsageError
from roomsignal.client import ParticipantType, Session
from roomsignal.errors import SessionError, SessionErrorException, SessionStateError
from roomsignal.protocol import SdpNotificationParams, SubscribeRequestParams
from roomsignal.tokens import mint

__all__ = ["DEMO_CODES", "add_demo_command", "run_demo"]

DEMO_CODES: tuple[int, ...] = (
    101, 102, 103, 104, 105, 106, 107, 108, 201, 203, 204, 206, 303, 1100, 1101
)  # fmt: skip
ROOM = "movie-night"
WAIT = 3.0  # seconds to wait for one expected event
DEADLINE = 18.0  # the whole demo, server start to summary
STREAMING_SEATS = 3
FAKE_OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=roomsignal demo\r\nt=0 0\r\na=sendonly\r\n"
FAKE_ANSWER = "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=roomsignal demo\r\nt=0 0\r\na=recvonly\r\n"


def add_demo_command(commands: Any) -> None:
    """Register ``demo`` on the subcommand parsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="run the demo on the embedded reference server",
        description="Start the reference server in-process, run bots that join, publish, "
        "subscribe, exchange SDP and ICE, chat and sync playback, and provoke each of the "
        "15 room error codes through the real protocol. Exit 0 only if all 15 were seen.",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object (seen, missing, ok, ...)"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also show the server's and client's logs"
    )
    parser.add_argument(
        "--media",
        action="store_true",
        help="instead: real audio and video from a publisher bot to two subscribers "
        "(needs the media extra)",
    )
    parser.add_argument(
        "--sfu",
        action="store_true",
        help="with --media: through a private Janus media node, to four subscribers "
        "from one upstream (needs janus)",
    )
    add_web_options(parser)
    parser.set_defaults(run=run_demo)


# --- output --------------------------------------------------------------------


class Output:
    """The demo's terminal output; silent with ``--json`` (the summary is printed whole)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def line(self, text: str = "") -> None:
        if not self.quiet:
            print(text, flush=True)

    def part(self, title: str) -> None:
        self.line()
        self.line(title)
        self.line("-" * len(title))

    def act(self, bot: str, text: str) -> None:
        self.line(f"  {bot:<7} {text}")

    def provoke(self, text: str) -> None:
        self.line(f"  > {text}")

    def error(self, bot: str, error: SessionError) -> None:
        if error.source == "client":
            how = " (found by the client)"
        elif error.method:
            how = f" answering {error.method}"
        else:
            how = " as sessionError"
        self.line(
            f"      {bot:<7} on_session_error: {error.code} {error.name} [{error.category}]{how}"
        )
        self.line(f"      {'':<7}   {error.message}")


# --- what the bots heard ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Heard:
    """One error, as one bot's listener received it."""

    bot: str
    error: SessionError


class Board:
    """Every error every bot's listener received, in arrival order, awaitable."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.heard: list[Heard] = []
        self._changed = asyncio.Event()

    def listener(self, bot: str) -> Callable[[SessionError], None]:
        def on_session_error(error: SessionError) -> None:
            self.heard.append(Heard(bot, error))
            self.out.error(bot, error)
            self._changed.set()

        return on_session_error

    def mark(self) -> int:
        return len(self.heard)

    async def wait(self, code: int, bots: tuple[str, ...], since: int) -> bool:
        """True once each of ``bots`` heard ``code`` after ``since``; False after ``WAIT``."""
        try:
            async with asyncio.timeout(WAIT):
                while not all(self._has(code, bot, since) for bot in bots):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    def _has(self, code: int, bot: str, since: int) -> bool:
        return any(h.error.code == code and h.bot == bot for h in self.heard[since:])

    def seen(self) -> dict[int, list[str]]:
        """Which bots heard each code."""
        by_code: dict[int, list[str]] = defaultdict(list)
        for h in self.heard:
            if h.bot not in by_code[h.error.code]:
                by_code[h.error.code].append(h.bot)
        return by_code


class Log:
    """The payloads of one event kind for one bot, awaitable by count."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()

    def __call__(self, item: Any) -> None:
        self.items.append(item)
        self._changed.set()

    async def count(self, n: int) -> list[Any]:
        """Wait (up to ``WAIT``) until ``n`` items arrived; raises TimeoutError."""
        async with asyncio.timeout(WAIT):
            while len(self.items) < n:
                self._changed.clear()
                await self._changed.wait()
        return self.items


# --- the bots ----------------------------------------------------------------------


class Bot:
    """One demo participant: a ``Session`` whose listeners feed the board and logs."""

    def __init__(
        self,
        demo: Demo,
        label: str,
        token: str,
        *,
        name: str | None = None,
        participant_type: str = "full",
        token_provider: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        self.label = label
        self.session = Session(
            demo.url,
            token=token,
            name=name or label,
            # (dave joins as "robot" on purpose: the server's 104 is the lesson.)
            participant_type=cast(ParticipantType, participant_type),
            token_provider=token_provider,
            reconnect=None,
            request_timeout=WAIT,
            open_timeout=WAIT,
            close_timeout=1.0,
        )
        self.session.on_session_error(demo.board.listener(label))
        self.messages = Log()
        self.sync = Log()
        self.offers = Log()
        self.answers = Log()
        self.candidates = Log()
        self.subscribe_requests = Log()
        self.closed = Log()
        self.disconnected = Log()
        self.session.on_message(self.messages)
        self.session.on_sync_data(self.sync)
        self.session.on_sdp_offer(self.offers)
        self.session.on_sdp_answer(self.answers)
        self.session.on_ice_candidate(self.candidates)
        self.session.on_subscribe_request(self.subscribe_requests)
        self.session.on_session_closed(self.closed)
        self.session.on_disconnected(self.disconnected)

    @property
    def id(self) -> str:
        return self.session.participant_id

    @property
    def has_joined(self) -> bool:
        """Whether this bot's session ever joined (it has an id)."""
        try:
            return bool(self.session.participant_id)
        except SessionStateError:
            return False

    def answer_subscribers(self, candidates: int = 2) -> None:
        """As a publisher: answer each subscribeRequest with an offer and trickled ICE."""

        async def on_subscribe_request(event: SubscribeRequestParams) -> None:
            await self.session.send_offer(event.exchange_id, FAKE_OFFER)
            for i in range(candidates):
                await self.session.send_ice_candidate(
                    event.exchange_id, _candidate(i, 50000), sdp_mid="0", sdp_m_line_index=0
                )

        self.session.on_subscribe_request(on_subscribe_request)

    def answer_offers(self, candidates: int = 2) -> None:
        """As a subscriber: answer each offer, then trickle our own ICE candidates."""

        async def on_sdp_offer(event: SdpNotificationParams) -> None:
            await self.session.send_answer(event.exchange_id, FAKE_ANSWER)
            for i in range(candidates):
                await self.session.send_ice_candidate(
                    event.exchange_id, _candidate(i, 60000), sdp_mid="0", sdp_m_line_index=0
                )

        self.session.on_sdp_offer(on_sdp_offer)


def _candidate(i: int, port: int) -> str:
    return f"candidate:{i + 1} 1 udp {2122260223 - i} 127.0.0.1 {port + i} typ host"


# --- the demo ----------------------------------------------------------------------


class Demo:
    """The server, the bots, the board, and the script they follow."""

    def __init__(self, url: str, secret: str, out: Output) -> None:
        self.url = url
        self.secret = secret
        self.out = out
        self.board = Board(out)
        self.stack = contextlib.AsyncExitStack()
        self.steps_failed: list[str] = []

    def token(self, room: str = ROOM, **claims: Any) -> str:
        return mint(self.secret, room, **claims)

    def bot(self, label: str, token: str | None = None, **kwargs: Any) -> Bot:
        bot = Bot(self, label, token or self.token(), **kwargs)
        self.stack.push_async_callback(bot.session.close)
        return bot

    async def join(self, bot: Bot) -> Bot:
        await bot.session.connect()
        return bot

    def failed(self, what: str) -> None:
        self.steps_failed.append(what)
        self.out.line(f"      (!) {what}")

    async def expect(
        self,
        code: int,
        what: str,
        action: Awaitable[Any],
        bot: Bot,
        *also: Bot,
    ) -> None:
        """Narrate ``what``, run ``action``, and wait until each bot's listener heard ``code``."""
        self.out.provoke(what)
        since = self.board.mark()
        with contextlib.suppress(SessionErrorException):
            await action  # a failure raises here and reaches the listeners: they show it
        bots = tuple(b.label for b in (bot, *also))
        if not await self.board.wait(code, bots, since):
            self.failed(f"expected {code} {lookup(code).name} for {', '.join(bots)}: not heard")

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Run one happy-path step; a failure is reported and the demo goes on."""
        try:
            yield
        except (TimeoutError, SessionErrorException) as exc:
            self.failed(f"{what}: {exc or type(exc).__name__}")

    # -- part 1 -------------------------------------------------------------------

    async def watch_together(self) -> dict[str, Bot]:
        out = self.out
        out.part("Part 1: a watch-together session")
        host = self.bot("host", self.token(roles=["moderator", "synchronizer"]))
        bob = self.bot("bob")
        carol = self.bot("carol", participant_type="viewer")
        host.answer_subscribers()
        bob.answer_subscribers()
        carol.answer_offers()
        await self.join(host)
        out.act("host", f"joined {ROOM!r} as {host.id} (roles: {', '.join(host.session.roles)})")
        await host.session.publish(audio=True, video=True)
        out.act("host", "publishes audio + video")
        await self.join(bob)
        await bob.session.publish(audio=True, video=False)
        out.act("bob", f"joined as {bob.id}, publishes audio")
        await self.join(carol)
        out.act(
            "carol", f"joined as {carol.id}, a viewer ({len(carol.session.participants)} others)"
        )

        with self.step("SDP exchange carol <- host"):
            exchange = await carol.session.subscribe(host.id)
            out.act("carol", f"subscribes to host: exchange {exchange}")
            await host.subscribe_requests.count(1)
            out.act("host", "got subscribeRequest: sends sdpOffer, trickles 2 ICE candidates")
            await carol.offers.count(1)
            out.act("carol", "got sdpOffer: sends sdpAnswer, trickles 2 ICE candidates")
            await host.answers.count(1)
            await carol.candidates.count(2)
            await host.candidates.count(2)
            out.act("", f"exchange {exchange} complete: offer, answer and 2 + 2 candidates relayed")

        with self.step("chat"):
            await bob.session.send_message("hello everyone")
            await host.messages.count(1)
            await carol.messages.count(1)
            out.act("bob", 'says "hello everyone": host and carol got it')
            await host.session.send_message("popcorn is in the kitchen", to=[bob.id])
            private = (await bob.messages.count(1))[0]
            out.act("host", f"whispers to bob: bob got it (private={private.private})")

        with self.step("playback sync"):
            await host.session.send_sync_data(12.5, True, media_id="big-buck-bunny")
            await bob.sync.count(1)
            synced = (await carol.sync.count(1))[0]
            out.act(
                "host",
                f"plays big-buck-bunny at 12.5 s: bob and carol follow "
                f"(position {synced.position}, playing={synced.playing})",
            )
        return {"host": host, "bob": bob, "carol": carol}

    # -- part 2 -------------------------------------------------------------------

    async def every_error(self, bots: dict[str, Bot]) -> None:
        host, bob, carol = bots["host"], bots["bob"], bots["carol"]
        self.out.part("Part 2: every room error, through the real protocol")

        dave = self.bot("dave", participant_type="robot")
        await self.expect(101, "dave joins with participantType 'robot'", self.join(dave), dave)

        await self.expect(
            102,
            "carol subscribes to a participant who is not there",
            carol.session.subscribe("p-nobody"),
            carol,
        )

        erin = self.bot("erin")
        await self.join(erin)
        await erin.session.publish(audio=True, video=True)
        self.out.act("erin", f"joined and publishes: all {STREAMING_SEATS} streaming seats taken")
        frank = self.bot("frank")
        await self.expect(
            206, "frank joins as a 4th streaming participant", self.join(frank), frank
        )

        async def erin_walks_out() -> None:
            await carol.session.subscribe(erin.id)
            await erin.subscribe_requests.count(1)
            await erin.session.close()

        await self.expect(
            103,
            "carol subscribes to erin, who leaves before sending her offer",
            erin_walks_out(),
            carol,
        )

        bob2 = self.bot("bob#2", name="bob")
        await self.expect(104, "a second 'bob' joins", self.join(bob2), bob2)

        await self.expect(
            105,
            "bob publishes with neither audio nor video",
            bob.session.publish(audio=False, video=False),
            bob,
        )
        await self.expect(
            106,
            "bob sends playback sync without the synchronizer role",
            bob.session.send_sync_data(3.0, True),
            bob,
        )

        gina = self.bot("gina", self.token(audio=False, video=False))
        await self.join(gina)
        self.out.act("gina", "joined with a token granting neither audio nor video")
        await self.expect(
            107, "gina publishes video", gina.session.publish(audio=False, video=True), gina
        )
        await self.expect(
            108, "gina publishes audio", gina.session.publish(audio=True, video=False), gina
        )

        await self.expect(
            201,
            "bob asks the server to fail (simulateScenario internalError)",
            bob.session.simulate_scenario("internalError"),
            bob,
        )

        ivan = self.bot("ivan", self.token("no-such-room", create=False))
        await self.expect(
            204,
            "ivan joins a session that does not exist, with no 'create' grant",
            self.join(ivan),
            ivan,
        )

        await self.expect(
            303,
            "carol subscribes to host a second time",
            carol.session.subscribe(host.id),
            carol,
        )

        judy = self.bot("judy", self.token(ttl=-60))
        await self.expect(
            1100, "judy joins with a token that expired a minute ago", self.join(judy), judy
        )

        stale = iter([self.token(ttl=-1), self.token()])

        async def token_service() -> str:
            return next(stale, self.token())

        kim = self.bot(
            "kim", self.token(ttl=-60), participant_type="viewer", token_provider=token_service
        )
        await self.expect(
            1100,
            "kim's token expired too; her token provider first returns a stale one "
            "(the server answers), then a fresh one",
            self.join(kim),
            kim,
        )
        if kim.has_joined:
            self.out.act("kim", f"got in with the fresh token as {kim.id}")

        mallory = self.bot("mallory", mint("a-secret-that-is-not-the-servers-0123456789", ROOM))
        await self.expect(
            1101, "mallory joins with a token signed by another secret", self.join(mallory), mallory
        )

        members = [b for b in (host, bob, carol, gina, kim) if b.has_joined]
        await self.expect(
            203,
            "host (moderator) closes the session: every member hears 203, then sessionClosed",
            host.session.close_session("the movie is over"),
            *members,
        )
        with self.step("sessionClosed"):
            for member in members:
                await member.closed.count(1)
                await member.disconnected.count(1)  # then the server closes each connection
            self.out.act("", f"sessionClosed reached {', '.join(b.label for b in members)}")
        late = self.bot("late")
        await self.expect(203, "late joins the closed session", self.join(late), late)

    # -- summary ------------------------------------------------------------------

    def summary(self, elapsed: float) -> dict[str, Any]:
        seen = self.board.seen()
        missing = [code for code in DEMO_CODES if code not in seen]
        return {
            "ok": not missing,
            "seen": sorted(code for code in seen if code in DEMO_CODES),
            "missing": missing,
            "expected": list(DEMO_CODES),
            "other_codes": sorted(code for code in seen if code not in DEMO_CODES),
            "errors": [
                {
                    "bot": h.bot,
                    "code": h.error.code,
                    "name": h.error.name,
                    "category": h.error.category,
                    "message": h.error.message,
                    "method": h.error.method,
                    "source": h.error.source,
                }
                for h in self.board.heard
            ],
            "steps_failed": self.steps_failed,
            "elapsed": round(elapsed, 3),
            "server": self.url,
        }

    def print_table(self, summary: dict[str, Any]) -> None:
        out = self.out
        seen = self.board.seen()
        out.part("Summary: the 15 room error codes")
        width = max(len(ErrorCode(code).name) for code in DEMO_CODES)
        out.line(f"  {'code':>5}  {'name':<{width}}  {'category':<8}  seen  heard by")
        for code in DEMO_CODES:
            entry = lookup(code)
            mark = "[x]" if code in seen else "[ ]"
            bots = ", ".join(seen.get(code, [])) or "-"
            out.line(f"  {code:>5}  {entry.name:<{width}}  {entry.category:<8}  {mark}   {bots}")
        count = len(summary["seen"])
        verdict = "OK" if summary["ok"] else f"MISSING {summary['missing']}"
        out.line()
        out.line(
            f"{count}/{len(DEMO_CODES)} codes seen through on_session_error "
            f"in {summary['elapsed']:.1f} s: {verdict}"
        )


@contextlib.asynccontextmanager
async def _quiet_logs(verbose: bool) -> AsyncIterator[None]:
    """Keep library logs (the simulated 201's traceback, say) off the demo's output."""
    if verbose:
        logging.basicConfig(
            stream=sys.stderr,
            level=logging.INFO,
            format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        )
        yield
        return
    handler = logging.NullHandler()
    loggers = [logging.getLogger(name) for name in ("roomsignal", "websockets")]
    saved = [(lg, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
    try:
        yield
    finally:
        for lg, propagate in saved:
            lg.removeHandler(handler)
            lg.propagate = propagate


async def _run(args: argparse.Namespace) -> int:
    from roomsignal.server import SignalingServer

    out = Output(quiet=args.json)
    started = time.perf_counter()
    secret = secrets.token_urlsafe(24)
    async with _quiet_logs(args.verbose):
        server = SignalingServer(
            port=0,
            secret=secret,
            allow_simulation=True,
            max_streaming_participants=STREAMING_SEATS,
            sdp_timeout=2.0,
            ice_queue_limit=8,
            resume_window=2.0,
            replay_buffer=256,
        )
        async with server:
            demo = Demo(server.url, secret, out)
            out.line(
                f"roomsignal demo: reference server on {server.url} "
                f"(simulation allowed, {STREAMING_SEATS} streaming seats per session)"
            )
            try:
                async with asyncio.timeout(DEADLINE), demo.stack:
                    bots = await demo.watch_together()
                    await demo.every_error(bots)
            except TimeoutError:
                demo.failed(f"the demo did not finish within {DEADLINE:g} s")
            except SessionErrorException as exc:
                demo.failed(f"a bot failed unexpectedly: {exc}")
        summary = demo.summary(time.perf_counter() - started)
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        demo.print_table(summary)
    return 0 if summary["ok"] else 1


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; exit status 0 only if every code was seen."""
    if getattr(args, "sfu", False) and not getattr(args, "media", False):
        raise UsageError("--sfu goes with --media (roomsignal demo --media --sfu)")
    if getattr(args, "media", False):
        from roomsignal.cli._demo_media import run_media_demo  # aiortc only when asked

        return run_media_demo(args)
    if args.web:
        return run_demo_web(args)
    return asyncio.run(_run(args))
