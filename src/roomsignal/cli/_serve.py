"""``roomsignal serve``: the reference server, until SIGINT or SIGTERM.

Every limit of ``SignalingServer`` is an option. The secret comes from
``--secret`` or ``ROOMSIGNAL_SECRET``; ``--dev`` generates one (and says so).
Joins, leaves and errors are logged to stderr by the server's own loggers;
the address is printed on stdout once the socket is bound. A signal closes
every session gracefully (members get ``sessionError`` 203, then
``sessionClosed``); a cluster node (``--redis``) drains instead: its rooms
move to other nodes and its clients resume there (``Cluster.drain``). A
second signal aborts what is left.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import signal
import ssl
import sys
from collections.abc import Iterator
from typing import Any

from roomsignal.cli._cluster import Node, add_cluster_flags, start_node
from roomsignal.cli._hardening import add_hardening_flags, hardening_kwargs
from roomsignal.cli._options import (
    SECRET_ENV,
    CommandError,
    UsageError,
    add_secret_option,
    bind_host,
    non_negative_float,
    non_negative_int,
    port_number,
    positive_float,
    resolve_secret,
    weak_secret_note,
)

__all__ = ["add_serve_command", "install_stop_signals"]

logger = logging.getLogger("roomsignal.cli")

_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_CANCEL_AGAIN = 0.2  # s: a second signal cancels the stop again after this


def add_serve_command(commands: Any) -> None:
    """Register ``serve`` on the subcommand parsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="run the reference signaling server",
        description="Run the reference signaling server (WebSocket, JSON-RPC 2.0, "
        "subprotocol roomsignal.v1; GET /healthz answers 200 ok) until SIGINT or SIGTERM.",
    )
    parser.add_argument(
        "--host",
        type=bind_host,
        default="127.0.0.1",
        help="address to bind: an IP address, localhost or this machine's name "
        "(default: 127.0.0.1)",
    )
    parser.add_argument(
        "--port", type=port_number, default=8765, help="port to bind, 0 for any (default: 8765)"
    )
    add_secret_option(parser)
    parser.add_argument(
        "--dev",
        action="store_true",
        help="also answer GET /dev/token?session=ID&name=N&roles=... with a token; with no "
        "secret given, generate one and print it (for local development only)",
    )
    parser.add_argument(
        "--no-web",
        dest="web",
        action="store_false",
        help="do not serve the page at / nor /roomsignal.js (docs/web.md)",
    )
    parser.add_argument(
        "--allow-simulation",
        action="store_true",
        help="answer simulateScenario (failures on demand, for tests and demos)",
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--max-streaming-participants",
        type=non_negative_int,
        default=16,
        metavar="N",
        help="full/screen participants per session, unless the token says (default: 16)",
    )
    limits.add_argument(
        "--max-sessions",
        type=non_negative_int,
        default=10_000,
        metavar="N",
        help="sessions the server holds at once (default: 10000)",
    )
    limits.add_argument(
        "--sdp-timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="time to complete an SDP exchange (default: 10)",
    )
    limits.add_argument(
        "--ice-queue-limit",
        type=non_negative_int,
        default=64,
        metavar="N",
        help="ICE candidates held per exchange and direction before the offer (default: 64)",
    )
    limits.add_argument(
        "--resume-window",
        type=non_negative_float,
        default=30.0,
        metavar="SECONDS",
        help="how long a dropped participant keeps its seat (default: 30)",
    )
    limits.add_argument(
        "--max-frame-bytes",
        type=non_negative_int,
        default=65536,
        metavar="N",
        help="largest frame accepted; bigger closes with 1009 (default: 65536)",
    )
    limits.add_argument(
        "--replay-buffer",
        type=non_negative_int,
        default=1024,
        metavar="N",
        help="notifications kept per participant for a resume (default: 1024)",
    )
    add_hardening_flags(limits)
    media = parser.add_argument_group("media node (docs/media.md)")
    node = media.add_mutually_exclusive_group()
    node.add_argument(
        "--media-node",
        metavar="URL",
        help="route media through this Janus server (ws://HOST:PORT, its WebSocket API): "
        "one upload per publisher, whatever the viewers (default: peer to peer)",
    )
    node.add_argument(
        "--janus",
        action="store_true",
        help="start a private Janus on 127.0.0.1 (/usr/bin/janus) as the media node, "
        "start it again if it dies, and stop it on exit",
    )
    media.add_argument(
        "--media-node-secret",
        metavar="SECRET",
        help="the media node's API secret (Janus's api_secret), if it has one",
    )
    add_cluster_flags(parser)
    ops = parser.add_argument_group("operations (docs/operations.md)")
    ops.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="logging to stderr (default: info: joins, leaves, errors)",
    )
    ops.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text lines, or one JSON object per line (time, level, logger, message, "
        "session, participant, code) for a log collector (default: text)",
    )
    ops.add_argument(
        "--metrics",
        action="store_true",
        help="answer GET /metrics in Prometheus' text format (needs roomsignal[metrics])",
    )
    ops.add_argument(
        "--tls-cert",
        metavar="PEM",
        help="serve wss:// and https:// on the same port with this certificate chain "
        "(with --tls-key)",
    )
    ops.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    parser.set_defaults(run=run_serve)


def install_stop_signals(
    stop: asyncio.Event, then: asyncio.Event | None = None
) -> list[signal.Signals]:
    """Make SIGINT and SIGTERM set ``stop``; returns the signals handled this way.

    With ``then``, a signal that comes once ``stop`` is set sets ``then``
    (a second signal aborts a drain). One handler serves both: it is never
    removed and put back in between, which would leave a moment where a
    signal takes its default action and kills the process.

    Where the loop cannot handle signals (Windows), Ctrl-C still raises
    ``KeyboardInterrupt``, which the caller turns into a clean exit.
    """

    def on_signal() -> None:
        if then is not None and stop.is_set():
            then.set()
        else:
            stop.set()

    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, on_signal)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append(signum)
    return installed


def _remove_signals(installed: list[signal.Signals]) -> None:
    loop = asyncio.get_running_loop()
    for signum in installed:
        loop.remove_signal_handler(signum)


def _check_pairs(args: argparse.Namespace) -> None:
    """Refuse an option that would be ignored without the one it goes with."""
    if args.media_node_secret is not None and not (args.media_node or args.janus):
        raise UsageError("--media-node-secret goes with --media-node or --janus")
    alone = [
        flag for flag, value in (("--node-id", args.node_id), ("--lease", args.lease)) if value
    ]
    if alone and not args.redis:
        verb = "means" if len(alone) == 1 else "mean"
        raise UsageError(f"{' and '.join(alone)} {verb} something only with --redis (a cluster)")


def run_serve(args: argparse.Namespace) -> int:
    """Configure logging, resolve the secret and serve until a signal."""
    _check_pairs(args)
    secret = resolve_secret(args)
    generated = False
    if secret is None:
        if not args.dev:
            raise UsageError(
                f"no secret: pass --secret or set {SECRET_ENV} (or --dev to generate one)"
            )
        secret = secrets.token_urlsafe(32)
        generated = True
    with serve_logging(args.log_level, args.log_format):
        note = weak_secret_note(secret)
        if note is not None:
            logger.warning("%s", note)
        return asyncio.run(_serve(args, secret, generated))


@contextlib.contextmanager
def serve_logging(level: str, log_format: str = "text") -> Iterator[None]:
    """Log to stderr at ``level`` while serving (joins, leaves and refusals are INFO).

    ``log_format`` ``json`` writes one JSON object per line (``_logs.py``).
    Undone on exit, so that ``main`` can run in-process (tests) without
    leaving handlers behind.
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from roomsignal.server._logs import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root = logging.getLogger()
    # websockets logs every connection and health check at INFO: too chatty here.
    ws_logger = logging.getLogger("websockets")
    saved = [(lg, lg.level) for lg in (root, ws_logger)]
    root.addHandler(handler)
    root.setLevel(level.upper())
    ws_logger.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for lg, saved_level in saved:
            lg.setLevel(saved_level)


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    cert, key = args.tls_cert, args.tls_key
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UsageError("--tls-cert and --tls-key go together: give both")
    from roomsignal.server._tls import TLSConfigError, server_context

    try:
        return server_context(cert, key)
    except TLSConfigError as exc:
        raise CommandError(str(exc)) from None


def _check_metrics(args: argparse.Namespace) -> None:
    if args.metrics:
        from roomsignal.server._metrics import INSTALL_HINT, metrics_available

        if not metrics_available():
            raise CommandError(f"--metrics needs the metrics extra: {INSTALL_HINT}")


def _is_cluster(node: object) -> bool:
    from roomsignal.server._cluster import Cluster  # imports no Redis client

    return isinstance(node, Cluster)


async def _stop_node(node: Node) -> None:
    """A cluster node drains (its rooms move, its clients resume elsewhere); a lone one closes.

    docs/operations.md, "Restart".
    """
    from roomsignal.server._cluster import Cluster

    if isinstance(node, Cluster):
        await node.drain()
        await node.close(graceful=False)  # the rooms live on elsewhere: no sessionClosed
    else:
        await node.close(graceful=True)


async def _serve(args: argparse.Namespace, secret: str, generated: bool) -> int:
    if not args.janus:
        return await _serve_with(args, secret, generated, args.media_node)
    from roomsignal.server._janus_process import JanusProcess, janus_binary

    if janus_binary() is None:
        raise CommandError("--janus needs Janus (/usr/bin/janus): apt-get install janus")
    janus = JanusProcess(api_secret=args.media_node_secret)
    try:
        await janus.start()
    except (OSError, RuntimeError) as exc:
        await janus.stop()
        raise CommandError(f"cannot start Janus: {exc}") from None
    keeper = asyncio.create_task(janus.keep_running(), name="janus-keeper")
    try:
        print(f"media node: a private Janus on {janus.url} (pid {janus.pid})", flush=True)
        return await _serve_with(args, secret, generated, janus.url)
    finally:
        keeper.cancel()  # before the stop: a stopped Janus is not started again
        await asyncio.gather(keeper, return_exceptions=True)
        await janus.stop()


async def _serve_with(
    args: argparse.Namespace, secret: str, generated: bool, media_node: str | None
) -> int:
    from roomsignal.server import SignalingServer

    if media_node is not None and not media_node.startswith(("ws://", "wss://")):
        raise UsageError(f"--media-node must be a ws:// or wss:// URL, not {media_node!r}")
    _check_metrics(args)
    context = _tls_context(args)
    try:
        server = SignalingServer(
            host=args.host,
            port=args.port,
            secret=secret,
            max_streaming_participants=args.max_streaming_participants,
            max_sessions=args.max_sessions,
            sdp_timeout=args.sdp_timeout,
            ice_queue_limit=args.ice_queue_limit,
            resume_window=args.resume_window,
            max_frame_bytes=args.max_frame_bytes,
            replay_buffer=args.replay_buffer,
            allow_simulation=args.allow_simulation,
            **hardening_kwargs(args),
            web=args.web,
            dev_tokens=args.dev,
            media_node=media_node,
            media_node_secret=args.media_node_secret,
            metrics=args.metrics,
            ssl=context,
        )
    except ValueError as exc:  # a limit no server can run with (e.g. --max-frame-bytes 10)
        raise UsageError(str(exc)) from None
    try:
        node = await start_node(server, args)  # the server, or a cluster node (--redis)
    except OSError as exc:
        raise CommandError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    stop, force = asyncio.Event(), asyncio.Event()
    installed = install_stop_signals(stop, then=force)
    try:
        if generated:
            print(f"dev secret (generated, for local use only): {secret}", flush=True)
            print(f"  export {SECRET_ENV}='{secret}'", flush=True)
        host_port = server.url.split("://", 1)[1]
        http = "https" if context is not None else "http"
        # The one announcement (stdout, so scripts can read the URL); the
        # server's own "serving on" record is DEBUG for this reason.
        simulation = "allowed" if args.allow_simulation else "off"
        print(
            f"listening on {server.url}  (health: {http}://{host_port}/healthz; "
            f"simulation {simulation}, sdp_timeout {args.sdp_timeout:g}s, "
            f"resume_window {args.resume_window:g}s)",
            flush=True,
        )
        if media_node is not None:
            up = server.media_node is not None and server.media_node.healthy
            state = "connected" if up else "unreachable for now, retrying"
            print(f"  media: through the media node {media_node} ({state})", flush=True)
        if args.web:
            print(f"  the page: {http}://{host_port}/", flush=True)
        if args.dev:
            print(f"  dev tokens: {http}://{host_port}/dev/token?session=ID&name=N", flush=True)
        if args.metrics:
            print(f"  metrics: {http}://{host_port}/metrics", flush=True)
        await stop.wait()
        if _is_cluster(node):
            logger.info("draining: handing rooms over, then exiting (a second signal aborts)")
        else:
            logger.info("shutting down: closing every session (a second signal aborts)")
        closing = asyncio.ensure_future(_stop_node(node))
        forcing = asyncio.ensure_future(force.wait())
        try:
            await asyncio.wait({closing, forcing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            forcing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forcing
        if not closing.done():
            logger.warning("second signal: aborting every connection")
            while not closing.done():
                # Again until it ends: a cancellation can be lost in a Redis call
                # caught mid-reply (a drain's), as Cluster.close knows.
                closing.cancel()
                await asyncio.wait({closing}, timeout=_CANCEL_AGAIN)
            with contextlib.suppress(asyncio.CancelledError):
                closing.result()
            await node.close(graceful=False)
        else:
            closing.result()
        logger.info("server stopped")
    except BaseException:
        with contextlib.suppress(Exception):
            await node.close(graceful=False)
        raise
    finally:
        _remove_signals(installed)
    return 0
