"""roomsignal benchmarks: the client next to bare websockets and python-socketio.

    python benchmarks/run.py            # full run (a few minutes)
    python benchmarks/run.py --quick    # smaller, under 60 s
    python benchmarks/run.py --json     # table, then one JSON object on the last line

Servers run in their own processes (``servers.py``): the reference server
with simulation allowed, a bare websockets echo server, python-socketio on
aiohttp, and a stub that replays the reference server's frames as fast as
websockets can. This process is the client. With two or more CPUs the
client is pinned to CPU 0 and the servers to CPU 1 (``--no-pin`` to turn it
off). See docs/benchmarks.md for the method.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import secrets
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import server_bench  # noqa: E402
import workloads  # noqa: E402

STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Config:
    events: int  # sessionErrors per burst
    event_reps: int
    sio_events: int
    sio_reps: int
    pings: int
    latency_samples: int
    sessions: int
    per_room: int
    concurrency: int


FULL = Config(
    events=100_000,
    event_reps=5,
    sio_events=50_000,
    sio_reps=3,
    pings=10_000,
    latency_samples=3_000,
    sessions=10_000,
    per_room=10,
    concurrency=100,
)
QUICK = Config(
    events=20_000,
    event_reps=3,
    sio_events=10_000,
    sio_reps=2,
    pings=2_000,
    latency_samples=500,
    sessions=1_000,
    per_room=10,
    concurrency=100,
)

# (key, comparison, threshold, what it means)
TARGETS: list[tuple[str, str, float, str]] = [
    # Client targets of issue 14 (issue 6 had 0.7, 5, 1.5, 30 s and 48 KiB).
    ("events_ratio", ">=", 0.9, "events_per_s / raw_events_per_s"),
    ("socketio_speedup", ">=", 15.0, "events_per_s / socketio_events_per_s"),
    ("rtt_ratio", "<=", 1.1, "rtt_us / raw_rtt_us"),
    ("join_s_5000", "<=", 30.0, "seconds to join 5000 sessions (scaled from N)"),
    ("kib_per_session", "<=", 24.0, "client RSS growth per joined session"),
    *server_bench.TARGETS,
    ("media_first_frame_ratio_p50", "<=", 1.2, "first video frame: signaling / direct (p50)"),
    ("latency_ratio_p50", "<=", 6.0, "cluster: notification latency across nodes / one node (p50)"),
    # The media node (issue 20), benchmarks/sfu.py: a private Janus.
    (
        "sfu_publisher_cpu_ratio",
        "<=",
        1.2,
        "publisher CPU with 50 subscribers / with 1, through Janus",
    ),
    (
        "sfu_subscribers_sustained",
        ">=",
        200,
        "subscribers of one publisher through Janus, each >= 95 % of its packets",
    ),
    ("sfu_first_frame_ratio", "<=", 1.5, "first video frame: through Janus / direct (p50)"),
]


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- server processes -------------------------------------------------------------


class ServerProcess:
    """One ``servers.py`` process; ``port`` once it listens. Always cleaned up."""

    def __init__(
        self, kind: str, *args: str, cpu: int | None = None, script: str = "servers.py"
    ) -> None:
        self.kind = kind
        self.log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        argv = [sys.executable, str(HERE / script), kind, *args]
        if cpu is not None:
            argv += ["--cpu", str(cpu)]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=HERE.parent,
        )
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Read ``PORT <n>`` from the child's stdout, or raise with its stderr."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise RuntimeError(f"{self.kind} server did not start: {self.stderr()}")
                chunk = os.read(self.proc.stdout.fileno(), 1)
                if not chunk:
                    raise RuntimeError(f"{self.kind} server exited: {self.stderr()}")
                line += chunk
        text = line.decode().strip()
        if not text.startswith("PORT "):
            raise RuntimeError(f"{self.kind} server said {text!r}: {self.stderr()}")
        self.port = int(text.split()[1])

    def stderr(self, limit: int = 4000) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()


@contextlib.contextmanager
def servers(
    specs: dict[str, tuple[str, ...]], cpu: int | None
) -> Iterator[dict[str, ServerProcess]]:
    """Start every server of ``specs`` (name -> argv) at once; stop them all on exit."""
    started: dict[str, ServerProcess] = {}
    try:
        for name, (kind, *args) in specs.items():
            started[name] = ServerProcess(kind, *args, cpu=cpu)
        for process in started.values():
            process.wait_ready()
        yield started
    finally:
        for process in started.values():
            process.stop()


def run_worker(args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``workloads.py`` in a fresh process; its last stdout line is JSON."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "workloads.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=HERE.parent,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"worker exited {proc.returncode}: {proc.stderr[-2000:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# --- machine ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu_model = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("roomsignal", "websockets", "pydantic", "pydantic-core", "python-socketio"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    for package in ("python-engineio", "aiohttp", "msgspec"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    import roomsignal

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        check=False,
    ).stdout.strip()
    return {
        "roomsignal_source": str(Path(roomsignal.__file__).parent),
        "git_head": commit or None,
        "nproc": os.cpu_count(),
        "cpu": cpu_model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": versions,
        "speedups": _speedups_in_use(),
    }


def _speedups_in_use() -> bool | None:
    """Whether the client reads sessionErrors through msgspec (the speedups extra)."""
    try:
        from roomsignal.protocol._codec import SPEEDUPS
    except ImportError:  # a tree from before the extra
        return None
    return bool(SPEEDUPS)


# --- the run -------------------------------------------------------------------------


def capture_frame(url: str, token: str) -> str | None:
    """One sessionError frame from the reference server, for the stub to replay."""

    async def grab() -> str:
        async with asyncio.timeout(10), workloads.raw_connect(url) as ws:
            await workloads.raw_join(ws, token, f"capture-{os.getpid()}")
            await ws.send(
                workloads.request(
                    7,
                    "simulateScenario",
                    {"scenario": "sessionErrors", "code": workloads.ERROR_CODE, "count": 1},
                )
            )
            while True:
                message = await ws.recv()
                assert isinstance(message, str)
                if "sessionError" in message:
                    return message

    try:
        return asyncio.run(grab())
    except Exception as exc:
        log(f"could not capture a frame from the reference server: {exc!r}")
        return None


def step(results: dict[str, Any], name: str, call: Any) -> None:
    """Run one benchmark; a failure is recorded, never fatal to the rest."""
    log(f"{name} ...")
    start = time.perf_counter()
    try:
        out = call()
    except Exception as exc:
        log(f"{name} failed: {exc!r}")
        results.setdefault("errors", {})[name] = repr(exc)
        return
    if isinstance(out, dict) and "error" in out:
        log(f"{name} failed: {out['error']}")
        results.setdefault("errors", {})[name] = out.pop("error")
    results.update(out)
    log(f"{name} done in {time.perf_counter() - start:.1f} s")


def run(
    cfg: Config, *, quick: bool, pin: bool, only: set[str] | None, against: str = "ref"
) -> dict[str, Any]:
    from roomsignal.tokens import mint

    secret = secrets.token_hex(16)
    can_pin = pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    client_cpu, server_cpu = (0, 1) if can_pin else (None, None)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    has_session = workloads.session_class() is not None
    results: dict[str, Any] = {
        "quick": quick,
        "pinned": can_pin,
        "session_available": has_session,
        "machine": machine(),
        "config": cfg.__dict__,
        "against": against,
    }

    def wanted(name: str) -> bool:
        return only is None or name in only

    token = mint(secret, "bench-main", ttl=3600)
    latency_token = mint(secret, "bench-latency", ttl=3600)
    timeout = 120.0
    ref_args = (against, "--secret", secret, "--max-sessions", str(cfg.sessions + 1000))
    specs: dict[str, tuple[str, ...]] = {"ref": ref_args}
    if wanted("rtt"):
        specs["echo"] = ("echo",)
    if wanted("socketio"):
        specs["sio"] = ("sio",)
    if wanted("latency"):
        specs["ref_stamp"] = (*ref_args, "--stamp")
    with servers(specs, server_cpu) as procs:
        ref = procs["ref"]
        # With both, python-socketio's bursts are interleaved with the events bursts, so
        # that its rate and ours come from the same minutes of a shared machine.
        interleave = wanted("events") and wanted("socketio")
        if wanted("events"):
            sio_peer = (
                (procs["sio"].http_url, cfg.sio_events, procs["sio"].proc.pid)
                if interleave
                else None
            )
            step(
                results,
                "events" + (" with python-socketio interleaved" if interleave else ""),
                lambda: asyncio.run(
                    workloads.events(
                        ref.url,
                        token,
                        cfg.events,
                        cfg.event_reps,
                        timeout,
                        server_pid=ref.proc.pid,
                        socketio=sio_peer,
                    )
                ),
            )
        if wanted("stub"):
            frame = capture_frame(ref.url, token)
            stub_args = ("stub", *(("--frame", frame) if frame else ()))
            with servers({"stub": stub_args}, server_cpu) as stub:
                stub_url, stub_pid = stub["stub"].url, stub["stub"].proc.pid

                def stub_events() -> dict[str, Any]:
                    out = asyncio.run(
                        workloads.events(
                            stub_url,
                            token,
                            cfg.events,
                            cfg.event_reps,
                            timeout,
                            server_pid=stub_pid,
                        )
                    )
                    return {f"stub_{key}": value for key, value in out.items()}

                step(results, "stub events (client-bound)", stub_events)
        if wanted("socketio") and not interleave:
            sio = procs["sio"]
            step(
                results,
                "socketio",
                lambda: asyncio.run(
                    workloads.socketio_events(
                        sio.http_url, cfg.sio_events, cfg.sio_reps, timeout, server_pid=sio.proc.pid
                    )
                ),
            )
        if wanted("rtt"):
            echo = procs["echo"]
            step(
                results,
                "rtt",
                lambda: asyncio.run(workloads.rtt(echo.url, ref.url, token, cfg.pings, timeout)),
            )
        if wanted("latency"):
            stamped = procs["ref_stamp"]
            step(
                results,
                "error latency",
                lambda: asyncio.run(
                    workloads.error_latency(
                        stamped.url, latency_token, cfg.latency_samples, timeout
                    )
                ),
            )
    if wanted("sessions"):
        # A fresh server, so that its state from the runs above costs nothing here.
        with servers({"ref": ref_args}, server_cpu) as fresh:
            worker_args = [
                "sessions",
                "--url",
                fresh["ref"].url,
                "--secret",
                secret,
                "--n",
                str(cfg.sessions),
                "--per-room",
                str(cfg.per_room),
                "--concurrency",
                str(cfg.concurrency),
                "--timeout",
                str(timeout),
            ]
            if client_cpu is not None:
                worker_args += ["--cpu", str(client_cpu)]
            step(results, "sessions", lambda: run_worker(worker_args, timeout * 3))

            def raw_sessions() -> dict[str, Any]:
                out = run_worker([*worker_args, "--raw"], timeout * 3)
                return {f"raw_{key}": value for key, value in out.items() if key != "error"} | (
                    {"error": out["error"]} if "error" in out else {}
                )

            step(results, "sessions (bare websockets)", raw_sessions)
    if wanted("server"):
        server_bench.run(
            results,
            quick=quick,
            secret=secret,
            cpu=server_cpu,
            process_cls=ServerProcess,
            step=step,
        )
    if wanted("media"):
        media_args = ["--json", *(("--runs", "20", "--steps", "1,4,8,12,16") if quick else ())]
        step(results, "media", lambda: run_media(media_args, timeout * 5))
    if wanted("sfu"):  # docs/benchmarks.md: through a private Janus (needs janus)
        sfu_args = [
            "--json",
            *(("--quick", "--steps", "100,150,200", "--window", "10") if quick else ()),
        ]
        step(results, "sfu", lambda: run_media(sfu_args, timeout * 10, "sfu.py"))
    if wanted("cluster"):  # docs/scaling.md: three nodes on a redis-server
        cluster_args = ["--json", *(("--messages", "200", "--joins", "100") if quick else ())]
        step(results, "cluster", lambda: run_media(cluster_args, timeout * 3, "cluster.py"))
    derive(results)
    return results


def run_media(args: list[str], timeout: float, script: str = "media.py") -> dict[str, Any]:
    """``media.py`` (or ``script``) in a fresh process (it needs its extra); its last line is JSON."""
    proc = subprocess.run(
        [sys.executable, str(HERE / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=HERE.parent,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"error": f"{script} exited {proc.returncode}: {proc.stderr[-2000:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def derive(results: dict[str, Any]) -> None:
    """Ratios and pass/fail per target, from whatever was measured."""

    def ratio(top: str, bottom: str) -> float | None:
        if isinstance(results.get(top), int | float) and results.get(bottom):
            return float(results[top]) / float(results[bottom])
        return None

    results["events_ratio"] = ratio("events_per_s", "raw_events_per_s")
    results["events_ratio_median"] = ratio("events_per_s_median", "raw_events_per_s_median")
    results["stub_events_ratio"] = ratio("stub_events_per_s", "stub_raw_events_per_s")
    # The same quotient from client CPU time per event: little disturbed by other processes.
    results["events_cpu_ratio"] = ratio("raw_events_client_cpu_us", "events_client_cpu_us")
    results["socketio_speedup"] = ratio("events_per_s", "socketio_events_per_s")
    # The same quotient for the bare websockets client: what any websockets-based
    # client could reach against this python-socketio baseline on this machine.
    results["socketio_ceiling"] = ratio("raw_events_per_s", "socketio_events_per_s")
    results["rtt_ratio"] = ratio("rtt_us", "raw_rtt_us")
    results["rtt_ratio_vs_raw_ref"] = ratio("rtt_us", "raw_ref_rtt_us")
    server_bench.derive(results)
    results["media_first_frame_ratio_p50"] = (results.get("media_first_frame_ratio") or {}).get(
        "p50"
    )
    if results.get("sessions") and results.get("join_s") is not None:
        results["join_s_5000"] = results["join_s"] * 5000 / results["sessions"]
    else:
        results["join_s_5000"] = None
    targets: dict[str, Any] = {}
    for key, op, threshold, meaning in TARGETS:
        value = results.get(key)
        passed: bool | None = None
        if value is not None:
            passed = value >= threshold if op == ">=" else value <= threshold
        targets[key] = {"target": f"{op} {threshold:g}", "value": value, "pass": passed}
        targets[key]["meaning"] = meaning
    results["targets"] = targets
    results["all_targets_met"] = all(t["pass"] for t in targets.values())


# --- output -----------------------------------------------------------------------------


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value >= 1000:
        return f"{value:,.0f}{unit}"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    return f"{value}{unit}"


def table(results: dict[str, Any]) -> str:
    m = results["machine"]
    v = m["versions"]
    title = (
        f"roomsignal benchmarks{' (quick)' if results['quick'] else ''}: "
        f"{m['nproc']} x {m['cpu']}, Python {m['python']}, websockets {v.get('websockets')}, "
        f"pydantic {v.get('pydantic')}, python-socketio {v.get('python-socketio')}"
        f"{', speedups (msgspec)' if m.get('speedups') else ', no speedups'}"
        f"{', pinned' if results['pinned'] else ''}"
    )
    g = results.get
    rows = [
        ("events/s, Session listener", fmt(g("events_per_s")), "bare websockets", fmt(g("raw_events_per_s")), fmt(g("events_ratio")), "events_ratio"),
        ("client CPU us/event (ratio inverted)", fmt(g("events_client_cpu_us")), "bare websockets", fmt(g("raw_events_client_cpu_us")), fmt(g("events_cpu_ratio")), None),
        ("events/s vs python-socketio", fmt(g("events_per_s")), "python-socketio", fmt(g("socketio_events_per_s")), fmt(g("socketio_speedup")), "socketio_speedup"),
        ("  bare websockets vs python-socketio", fmt(g("raw_events_per_s")), "python-socketio", fmt(g("socketio_events_per_s")), fmt(g("socketio_ceiling")), None),
        ("events/s, stub server (client-bound)", fmt(g("stub_events_per_s")), "bare websockets", fmt(g("stub_raw_events_per_s")), fmt(g("stub_events_ratio")), None),
        ("ping round trip, us (median)", fmt(g("rtt_us")), "bare ws echo", fmt(g("raw_rtt_us")), fmt(g("rtt_ratio")), "rtt_ratio"),
        ("ping round trip, us (median)", fmt(g("rtt_us")), "bare ws ref ping", fmt(g("raw_ref_rtt_us")), fmt(g("rtt_ratio_vs_raw_ref")), None),
        ("error latency p50, us", fmt(g("error_latency_p50_us")), "bare ws recv", fmt(g("raw_error_latency_p50_us")), "", None),
        ("error latency p99, us", fmt(g("error_latency_p99_us")), "bare ws recv", fmt(g("raw_error_latency_p99_us")), "", None),
        (f"join {g('sessions') or 0} sessions, s", fmt(g("join_s")), "bare websockets", fmt(g("raw_join_s")), "", None),
        ("  scaled to 5000, s", fmt(g("join_s_5000")), "", "", "", "join_s_5000"),
        ("client RSS per session, KiB", fmt(g("kib_per_session")), "bare websockets", fmt(g("raw_kib_per_session")), "", "kib_per_session"),
        *server_bench.rows(g, fmt),
        ("first video frame p50, ms", fmt((g("media_first_frame_ms") or {}).get("signaling_p50")), "direct aiortc pair", fmt((g("media_first_frame_ms") or {}).get("direct_p50")), fmt(g("media_first_frame_ratio_p50")), "media_first_frame_ratio_p50"),
        ("first video frame p99, ms", fmt((g("media_first_frame_ms") or {}).get("signaling_p99")), "direct aiortc pair", fmt((g("media_first_frame_ms") or {}).get("direct_p99")), fmt((g("media_first_frame_ratio") or {}).get("p99")), None),
        ("subscribers per publisher bot at 30 fps", fmt((g("media_capacity") or {}).get("max_sustained_subscribers")), "", "", "", None),
        ("publisher CPU through Janus, 50 subs / 1", fmt((g("sfu_publisher_cpu") or {}).get("50")), "1 subscriber", fmt((g("sfu_publisher_cpu") or {}).get("1")), fmt(g("sfu_publisher_cpu_ratio")), "sfu_publisher_cpu_ratio"),
        (f"  peer to peer, {g('p2p_subscribers') or '-'} subs / 1", fmt((g("p2p_publisher_cpu") or {}).get(str(g("p2p_subscribers")))), "1 subscriber", fmt((g("p2p_publisher_cpu") or {}).get("1")), fmt(g("p2p_publisher_cpu_ratio")), None),
        ("subscribers sustained through Janus", fmt(g("sfu_subscribers_sustained")), "", "", "", "sfu_subscribers_sustained"),
        ("first video frame through Janus p50, ms", fmt((g("sfu_first_frame_ms") or {}).get("janus_p50")), "direct aiortc pair", fmt((g("sfu_first_frame_ms") or {}).get("direct_p50")), fmt(g("sfu_first_frame_ratio")), "sfu_first_frame_ratio"),
        ("cluster: note latency across nodes p50, us", fmt(g("latency_across_nodes_p50_us")), "one node", fmt(g("latency_one_node_p50_us")), fmt(g("latency_ratio_p50")), "latency_ratio_p50"),
        ("cluster: joins/s per node, 3 at once", fmt(min(g("joins_per_s_per_node_three_at_once") or [0]) or None), "one node alone", fmt(g("joins_per_s_one_node")), "", None),
        ("cluster: Redis commands per relayed request", fmt(g("redis_calls_per_relayed_request")), "", "", "", None),
    ]  # fmt: skip
    headers = ("measure", "roomsignal", "baseline", "value", "ratio", "target")
    lines: list[tuple[str, ...]] = [headers]
    for label, value, base_name, base_value, ratio, target_key in rows:
        target = ""
        if target_key is not None:
            t = results["targets"][target_key]
            verdict = {True: "ok", False: "MISSED", None: "n/a"}[t["pass"]]
            target = f"{t['target']} {verdict}"
        lines.append((label, value, base_name, base_value, ratio, target))
    widths = [max(len(row[i]) for row in lines) for i in range(len(headers))]
    out = [title, ""]
    for row in lines:
        cells = [
            cell.ljust(widths[i]) if i in (0, 2, 5) else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        out.append("  ".join(cells).rstrip())
    if results.get("errors"):
        out.append("")
        out.extend(f"error in {name}: {error}" for name, error in results["errors"].items())
    if not results["session_available"]:
        out.append("")
        out.append("roomsignal.Session is not importable yet: its measures are n/a.")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, under 60 s")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to CPUs")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed (for CI or a test)"
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated subset: events,stub,socketio,rtt,latency,sessions,media,server,"
        "cluster,sfu",
    )
    parser.add_argument("--sessions", type=int, default=None, help="override N sessions")
    parser.add_argument(
        "--against",
        choices=["ref", "stub"],
        default="ref",
        help="the server of the roomsignal measures (stub: a development stand-in)",
    )
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.sessions is not None:
        cfg = Config(**{**cfg.__dict__, "sessions": args.sessions})
    only = set(args.only.split(",")) if args.only else None
    start = time.perf_counter()
    results = run(cfg, quick=args.quick, pin=not args.no_pin, only=only, against=args.against)
    results["wall_s"] = time.perf_counter() - start
    results["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(table(results), flush=True)
    if args.json:
        print(json.dumps(results, separators=(",", ":"), default=str), flush=True)
    if results.get("errors"):
        return 1
    return 1 if args.check and not results["all_targets_met"] else 0


def quick(**overrides: Any) -> dict[str, Any]:
    """The ``--quick`` run as a function, for a test: returns the results dict.

    ``overrides`` replace fields of the quick ``Config`` (e.g. ``sessions=200``).
    """
    cfg = Config(**{**QUICK.__dict__, **overrides})
    return run(cfg, quick=True, pin=False, only=None)


if __name__ == "__main__":
    sys.exit(main())
