"""What metrics cost on the hot path: ``fanout_ratio`` and server CPU per notification.

    python benchmarks/metrics_cost.py [--rounds 3] [--base-src DIR]

Runs ``server_bench.fanout`` (a room of 200, bursts of 300 chat
messages) against the reference server in three variants, interleaved
round by round, each on fresh processes:

- ``off``: this tree, ``/metrics`` off (the counters still count: they are
  plain ints on the paths, always there);
- ``on``: this tree with ``metrics=True``, ``/metrics`` scraped every
  0.25 s during the burst (60 times a Prometheus default of 15 s);
- ``base`` (with ``--base-src``): the ``src`` of a tree without the
  counters (``git archive <commit> src | tar -x -C DIR``), to see what the
  counting itself costs.

Prints one JSON object: per variant the median of ``fanout_ratio`` and the
mean server CPU per notification over every burst, and ``on``/``off`` and
``off``/``base`` ratios. On a shared machine the rates are noisy (the client
is the bottleneck); the server's CPU per notification is the steadier figure.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import server_bench  # noqa: E402
from run import ServerProcess  # noqa: E402

SECRET = "bench-secret-metrics-cost-0123456789"
# A room of 200, 300 messages a burst (60,000 notifications, 0.1-0.2 s of server CPU:
# ten-millisecond CPU ticks are then fine enough), 3 bursts a run.
CONFIG = dataclasses.replace(server_bench.QUICK, messages=300, reps=3)


def _scrape(url: str, stop: threading.Event, counter: list[int]) -> None:
    while not stop.wait(0.25):
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
            counter[0] += 1
        except OSError:
            pass


def one(variant: str, base_src: str | None) -> dict[str, Any]:
    from roomsignal.tokens import mint

    env_before = os.environ.get("PYTHONPATH")
    if variant == "base":
        assert base_src is not None
        os.environ["PYTHONPATH"] = base_src  # the child imports the old roomsignal
    args = ["--secret", SECRET, "--max-sessions", "200"]
    if variant == "on":
        args.append("--metrics")
    ref = ServerProcess("ref", *args, script="server_peers.py", cpu=1)
    bare = ServerProcess("broadcast", script="server_peers.py", cpu=1)
    if env_before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = env_before
    stop = threading.Event()
    scrapes = [0]
    try:
        ref.wait_ready()
        bare.wait_ready()
        scraper = None
        if variant == "on":
            scraper = threading.Thread(
                target=_scrape, args=(ref.http_url + "/metrics", stop, scrapes), daemon=True
            )
            scraper.start()
        token = mint(SECRET, "fanout", ttl=3600)
        cfg = CONFIG
        result = asyncio.run(
            server_bench.fanout(
                ref.url, ref.proc.pid, bare.url, bare.proc.pid, token, cfg, timeout=120
            )
        )
        stop.set()
        if scraper is not None:
            scraper.join()
    finally:
        stop.set()
        ref.stop()
        bare.stop()
    ratio = result["fanout_notifications_per_s"] / result["bare_fanout_notifications_per_s"]
    return {
        "fanout_ratio": ratio,
        "cpu_us": result["fanout_server_cpu_runs"],
        "scrapes": scrapes[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base-src", default=None)
    args = parser.parse_args()
    variants = ["off", "on"] + (["base"] if args.base_src else [])
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for variant in variants:
            runs[variant].append(one(variant, args.base_src))
            print(variant, runs[variant][-1], file=sys.stderr, flush=True)
    summary: dict[str, Any] = {}
    for variant, got in runs.items():
        summary[variant] = {
            "fanout_ratio": statistics.median(r["fanout_ratio"] for r in got),
            # the mean of every burst's: one burst is ~15 CPU ticks of 10 ms, too coarse alone
            "cpu_us_per_notification": statistics.mean(c for r in got for c in r["cpu_us"]),
            "scrapes": sum(r["scrapes"] for r in got),
        }

    def ratio(a: str, b: str, key: str) -> float | None:
        if a in summary and b in summary and summary[b][key]:
            return float(summary[a][key] / summary[b][key])
        return None

    summary["on_vs_off_fanout"] = ratio("on", "off", "fanout_ratio")
    summary["on_vs_off_cpu"] = ratio("on", "off", "cpu_us_per_notification")
    summary["off_vs_base_fanout"] = ratio("off", "base", "fanout_ratio")
    summary["off_vs_base_cpu"] = ratio("off", "base", "cpu_us_per_notification")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
