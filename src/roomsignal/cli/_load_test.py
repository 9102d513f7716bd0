"""``roomsignal load-test``: many bots against one server, with latency, loss and chaos.

The engine is ``_load_engine``; this module owns the command: its options
and their checks, the refusal of a server that is not on this machine, the
live progress and the summary (rich, the ``load`` extra), and ``--json``.
Before any bot, a probe joins: an unreachable server, a wrong secret, or
``--chaos`` against a server without simulation is one line and exit 1
(2 for ``--chaos``). Ctrl-C stops the run: every bot leaves, the summary
covers what ran, exit 130.

The host check never resolves or dials anything: the URL's host must be
``localhost``, a loopback address (127.0.0.0/8, ::1), or an address of one
of this machine's own interfaces (read with psutil, which asks the kernel,
not the network); a name other than ``localhost`` is refused as it stands.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import secrets
import sys
import time
from typing import Any

from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from roomsignal.cli._load_engine import LoadPlan, LoadTest, Snapshot
from roomsignal.cli._options import (
    CommandError,
    UsageError,
    add_secret_option,
    non_negative_float,
    positive_float,
    resolve_secret,
    unless,
)
from roomsignal.cli._tls import add_ca_option, client_ssl

__all__ = ["add_load_test_command", "is_this_machine"]

MAX_PARTICIPANTS = 100_000
MAX_ROOMS = 10_000
MAX_DURATION = 3600.0
MAX_RATE = 10_000.0
_EXTRA_HINT = "pip install 'roomsignal[load]'"
_TOKEN_NOT_VALID = 1101
_METHOD_NOT_FOUND = -32601
_PROBE_SCENARIO = "loadTestProbe"  # no such scenario: -32602 with simulation, -32601 without


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def add_load_test_command(commands: Any) -> None:
    """Register ``load-test`` on the subcommand parsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "load-test",
        help="many bots against a server: latency, loss, errors",
        description="Join N bots over R rooms, chat, sync and (with --chaos) cut "
        "connections; report join and message latency, notifications/s, errors "
        "by code, reconnections, and messages lost or duplicated. Stops by itself.",
    )
    parser.add_argument(
        "url",
        nargs="+",
        help="the server, e.g. ws://127.0.0.1:8765 (this machine only); several: a cluster's "
        "nodes, the bots spread over them and each fails over to the next",
    )
    add_secret_option(parser)
    parser.add_argument("--rooms", type=_positive_int, required=True, metavar="R")
    parser.add_argument(
        "--participants",
        type=_positive_int,
        required=True,
        metavar="N",
        help="bots in all, spread over the rooms",
    )
    parser.add_argument(
        "--publishers",
        type=int,
        default=0,
        metavar="P",
        help="bots (in all, spread over the rooms) that join as 'full' and publish; "
        "the others join as viewers (default: 0)",
    )
    parser.add_argument(
        "--rate",
        type=positive_float,
        default=50.0,
        metavar="JOINS_PER_S",
        help="joins per second (default: 50)",
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="seconds of chat after the joins (default: 10)",
    )
    parser.add_argument(
        "--message-rate",
        type=non_negative_float,
        default=1.0,
        metavar="M",
        help="chat messages per second per room (default: 1)",
    )
    parser.add_argument(
        "--chaos",
        type=non_negative_float,
        default=0.0,
        metavar="RATE",
        help="cut a random bot's connection RATE times per second "
        "(simulateScenario connectionDrop; the server must allow simulation)",
    )
    parser.add_argument("--media", action="store_true", help="publishers send real video")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="connect and request timeout per bot (default: 10)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the random choices")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout at the end"
    )
    parser.add_argument(
        "--i-own-this-server",
        action="store_true",
        help="allow a server that is not on this machine (only one you run yourself)",
    )
    add_ca_option(parser)
    parser.set_defaults(run=run_load_test)


# -- checks --------------------------------------------------------------------------


def _own_addresses() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses of this machine's interfaces (none known without psutil)."""
    try:
        import psutil
    except ImportError:
        return set()
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            with contextlib.suppress(ValueError):
                address = ipaddress.ip_address(entry.address.split("%", 1)[0])
                found.add(address)
    return found


def is_this_machine(host: str) -> bool:
    """Whether ``host`` (from a URL) is this machine, deciding without resolving a name."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name: resolving it could already leave the machine
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address in _own_addresses()


def _check(args: argparse.Namespace) -> LoadPlan:
    urls = [args.url] if isinstance(args.url, str) else list(args.url)
    for url in urls:
        try:
            uri = parse_uri(url)
        except (InvalidURI, ValueError) as exc:
            detail = exc.msg if isinstance(exc, InvalidURI) else str(exc)
            raise UsageError(
                f"not a WebSocket URL (ws://HOST:PORT or wss://...): {url!r}: {detail}"
            ) from None
        if not args.i_own_this_server and not is_this_machine(uri.host):
            raise UsageError(
                f"refusing {uri.host!r}: not an address of this machine (loopback, localhost, "
                "or one of its interfaces); pass --i-own-this-server only for a server you run"
            )
    secret = resolve_secret(args)
    if not secret:
        raise UsageError("no secret: pass --secret or set ROOMSIGNAL_SECRET")
    if args.participants > MAX_PARTICIPANTS:
        raise UsageError(f"--participants is at most {MAX_PARTICIPANTS}")
    if args.rooms > MAX_ROOMS:
        raise UsageError(f"--rooms is at most {MAX_ROOMS}")
    if args.rooms > args.participants:
        raise UsageError("--rooms must not exceed --participants (a room needs a bot)")
    if not 0 <= args.publishers <= args.participants:
        raise UsageError("--publishers must be between 0 and --participants")
    if args.duration > MAX_DURATION:
        raise UsageError(f"--duration is at most {MAX_DURATION:g} seconds")
    for option, value in (("--rate", args.rate), ("--message-rate", args.message_rate)):
        if value > MAX_RATE:
            raise UsageError(f"{option} is at most {MAX_RATE:g} per second")
    if args.chaos > MAX_RATE:
        raise UsageError(f"--chaos is at most {MAX_RATE:g} per second")
    if args.media:
        if args.publishers < 1:
            raise UsageError("--media needs at least one publisher (--publishers P)")
        try:
            import roomsignal.media  # noqa: F401  (aiortc: only with --media)
        except ImportError:
            raise UsageError(
                "--media needs the media extra (aiortc): pip install 'roomsignal[media]'"
            ) from None
    return LoadPlan(
        url=urls[0],
        urls=tuple(urls),
        secret=secret,
        rooms=args.rooms,
        participants=args.participants,
        publishers=args.publishers,
        join_rate=args.rate,
        duration=args.duration,
        message_rate=args.message_rate,
        chaos=args.chaos,
        timeout=args.timeout,
        seed=args.seed,
        media=args.media,
        ssl=client_ssl(args, args.url),
    )


def run_load_test(args: argparse.Namespace) -> int:
    """Check the options and the server, run, print the summary (or JSON).

    Exit status 0 if nothing was lost, 1 if the run failed, 130 if Ctrl-C
    (or SIGTERM) stopped it: then every bot leaves and the summary covers
    what ran.
    """
    plan = _check(args)
    try:
        from rich.console import Console
    except ImportError:
        raise CommandError(f"load-test needs the 'load' extra: {_EXTRA_HINT}") from None
    console = Console(highlight=False)
    live = not args.json and sys.stdout.isatty()
    report = asyncio.run(_run(plan, console, live))
    if report is None:  # stopped before the first bot
        return 130
    if args.json:  # stdout carries the JSON object alone, and nothing else is printed
        print(json.dumps(report, separators=(",", ":")), flush=True)
    else:
        console.print(summary_table(report))
    if report["interrupted"]:
        return 130
    return 0 if report["ok"] else 1


async def _preflight(plan: LoadPlan) -> None:
    """Join once, before any bot, and fail in one line on what would spoil the run.

    A server it cannot reach or a refused token (a wrong secret) raises
    ``CommandError``; ``--chaos`` against a server without simulation raises
    ``UsageError``.
    """
    from roomsignal.client import Session
    from roomsignal.errors import SessionErrorException
    from roomsignal.tokens import mint

    room = f"loadtest-probe-{secrets.token_hex(4)}"
    # The bots' connection options: a wss:// server's CA (--ca-file) when the plan has one.
    options: dict[str, Any] = {}
    ssl = getattr(plan, "ssl", None)
    if ssl is not None:
        options["ssl"] = ssl
    session = Session(
        plan.url,
        token=mint(plan.secret, room, ttl=300),
        name="load-test-probe",
        participant_type="viewer",
        reconnect=None,
        open_timeout=plan.timeout,
        request_timeout=plan.timeout,
        close_timeout=min(2.0, plan.timeout),
        **options,
    )
    try:
        try:
            await session.connect()
        except SessionErrorException as exc:
            error = exc.error
            if error.code == _TOKEN_NOT_VALID:
                raise CommandError(
                    f"{plan.url} refused the bots' token ({error.code} {error.name}: "
                    f"{error.message}): is --secret the server's secret?"
                ) from None
            if error.source == "client":  # no connection (refused, unreachable, timed out)
                raise CommandError(error.message) from None  # "cannot connect to URL: why"
            raise CommandError(
                f"{plan.url} refused a join: {error.code} {error.name}: {error.message}"
            ) from None
        if plan.chaos:
            try:
                await session.simulate_scenario(_PROBE_SCENARIO)
            except SessionErrorException as exc:
                if exc.code == _METHOD_NOT_FOUND:
                    raise UsageError(
                        "--chaos needs a server that allows simulation "
                        "(roomsignal serve --allow-simulation); this one does not"
                    ) from None
    finally:
        await session.close()


async def _run(plan: LoadPlan, console: Any, live: bool) -> dict[str, Any] | None:
    from roomsignal.cli._serve import install_stop_signals

    stopped = asyncio.Event()
    install_stop_signals(stopped)
    if not await unless(_preflight(plan), stopped.wait()):
        return None  # Ctrl-C before any bot: nothing to report
    test = LoadTest(plan)
    watcher = asyncio.ensure_future(_stop_on(stopped, test))
    try:
        if not live:
            return await test.run()
        return await _run_live(test, console)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def _stop_on(stopped: asyncio.Event, test: LoadTest) -> None:
    await stopped.wait()
    test.stop()


async def _run_live(test: LoadTest, console: Any) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(bar_width=20),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}"),
        console=console,
        transient=True,
    )
    task = progress.add_task("starting", total=1.0, stats="")

    async def tick() -> None:
        while True:
            snap = test.snapshot
            progress.update(task, description=snap.phase, **_progress(snap))
            await asyncio.sleep(0.2)

    with progress:
        ticker = asyncio.ensure_future(tick())
        try:
            return await test.run()
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)


def _progress(snap: Snapshot) -> dict[str, Any]:
    length = snap.phase_length or 1.0
    done = min(1.0, (time.perf_counter() - snap.phase_started) / length)
    stats = (
        f"joined {snap.joined} failed {snap.join_failures} sent {snap.messages_sent} "
        f"recv {snap.messages_received} drops {snap.drops} "
        f"reconn {snap.reconnections} err {snap.errors}"
    )
    return {"completed": done, "stats": stats}


def _count(number: int, noun: str) -> str:
    """``1 room``, ``2 rooms``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def summary_table(report: dict[str, Any]) -> Any:
    """The end-of-run table (a rich ``Table``)."""
    from rich.table import Table

    plan = report["plan"]
    title = (
        f"load test: {_count(plan['participants'], 'bot')} in {_count(plan['rooms'], 'room')}, "
        f"{plan['duration']:g} s at {plan['message_rate']:g} msg/s per room"
        + (f", chaos {plan['chaos']:g}/s" if plan["chaos"] else "")
    )
    table = Table(title=title, title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    join, message = report["join_latency_ms"], report["message_latency_ms"]
    messages = report["messages"]
    rate = report["notifications_per_s"]
    rows = [
        ("joined", f"{report['joined']}/{plan['participants']}"),
        (
            "join latency ms p50 / p95 / p99",
            f"{_ms(join['p50'])} / {_ms(join['p95'])} / {_ms(join['p99'])}",
        ),
        (
            "message latency ms p50 / p95 / p99",
            f"{_ms(message['p50'])} / {_ms(message['p95'])} / {_ms(message['p99'])}",
        ),
        ("messages sent (confirmed)", f"{messages['sent']} ({messages['confirmed']})"),
        (
            "deliveries expected / received",
            f"{messages['expected_deliveries']} / {messages['delivered']}",
        ),
        ("lost / duplicated", f"{messages['lost']} / {messages['duplicated']}"),
        ("notifications / s", "n/a" if rate is None else f"{rate:,.0f}"),
        ("chaos drops", str(report["chaos"]["drops"])),
        (
            "reconnections (resumed / reset)",
            f"{report['reconnections']} ({report['resumed']} / {report['state_resets']})",
        ),
    ]
    for error in report["errors"]:
        rows.append((f"error {error['code']} {error['name']}", str(error["count"])))
    if not report["errors"]:
        rows.append(("errors", "0"))
    if report["chaos"]["rate"] and report["chaos"]["available"] is False:
        rows.append(("chaos", "refused: no simulation here"))
    media = report["media"]
    if media is not None:
        first = media["first_frame_ms"]
        fps, kbps = media["frames_per_s_per_subscription"], media["kbps_per_subscription"]
        failed = sum(media["subscription_failures"].values())
        sustained = media["subscribers_sustained"]
        rows += [
            (
                "media",
                media["mode"]
                + (f", {media['upstreams']} upstream(s)" if media["upstreams"] is not None else ""),
            ),
            ("media subscriptions (failed)", f"{media['subscriptions']} ({failed})"),
            (
                "subscribers sustained (>= 90 % of the frame rate)",
                "-" if sustained is None else f"{sustained} of {media['subscriptions']}",
            ),
            ("frames delivered in the chat phase", str(media["frames_delivered"])),
            (
                "first frame ms p50 / p95 / p99",
                f"{_ms(first['p50'])} / {_ms(first['p95'])} / {_ms(first['p99'])}",
            ),
            ("video frames (fps per subscription)", f"{media['frames']} ({_ms(fps)})"),
            ("kbit/s per subscription", _ms(kbps)),
        ]
    if report["interrupted"]:
        rows.append(("run", f"interrupted while {report['interrupted']}: every bot left"))
    elif report["cut_short"]:
        rows.append(("run", "cut short at its deadline"))
    elif not report["drained"]:
        rows.append(("run", "some messages never arrived"))
    rows.append(("elapsed s", f"{report['elapsed_s']:.1f}"))
    result = "OK" if report["ok"] else "FAILED"
    rows.append(("result", "INTERRUPTED" if report["interrupted"] else result))
    for label, value in rows:
        table.add_row(label, value)
    return table
