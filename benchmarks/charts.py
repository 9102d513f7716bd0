"""PNG charts for docs/benchmarks.md, from the JSON the tools print.

    python benchmarks/charts.py --load-test LOAD.json --bench BENCH.json [--out docs/img]

- ``--load-test``: the object ``roomsignal load-test --json`` prints; gives
  ``load-test-latency.png``, the distributions of join and end-to-end
  message latency (log-spaced histograms, p50/p95/p99 marked).
- ``--bench``: the last line of ``benchmarks/run.py --json`` (with the
  server benchmarks); gives ``fanout.png``, the reference server's fan-out
  beside a bare websockets ``broadcast()`` of the same frames: notifications
  per second (each run a dot, the median a bar) and server CPU per
  notification.

matplotlib is a bench-only dependency (the ``bench`` extra). Either input
may be given alone; a file that is not such JSON is one clear line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

ROOT = Path(__file__).resolve().parent.parent
BLUE, GREY, RED = "#1f77b4", "#8c8c8c", "#d62728"


def _last_json(path: Path) -> dict[str, Any]:
    """The last line of ``path`` that is a JSON object (the tools print it last)."""
    for line in reversed(path.read_text(encoding="utf-8").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    raise ValueError(f"{path}: no JSON object in it")


def _histogram(ax: Axes, block: dict[str, Any], marks: dict[str, Any], title: str) -> None:
    edges, counts = block["edges_ms"], block["counts"]
    used = [i for i, count in enumerate(counts) if count]
    if not used:
        ax.set_title(f"{title}: no samples")
        return
    lo, hi = max(0, used[0] - 1), min(len(counts), used[-1] + 2)
    widths = [edges[i + 1] - edges[i] for i in range(lo, hi)]
    ax.bar(edges[lo:hi], counts[lo:hi], width=widths, align="edge", color=BLUE, alpha=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds (log scale)")
    ax.set_ylabel("samples")
    ax.set_title(f"{title} ({marks['count']:,} samples)")
    for key, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
        value = marks.get(key)
        if value is not None:
            ax.axvline(value, color=RED, linestyle=style, linewidth=1.5)
            ax.annotate(
                f"{key} {value:.1f} ms",
                xy=(value, 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -14 - 12 * ["p50", "p95", "p99"].index(key)),
                textcoords="offset points",
                color=RED,
                fontsize=9,
            )
    ax.grid(axis="y", alpha=0.3)


def _inside(ax: Axes, x: int, value: float, text: str) -> None:
    """A bar's value written inside it, clear of the dots and the frame."""
    ax.text(x, value / 2, text, ha="center", va="center", color="white", fontweight="bold")


def load_test_chart(report: dict[str, Any], out: Path) -> Path:
    """The latency distributions of one load test."""
    plan, messages = report["plan"], report["messages"]
    fig, (joins, chat) = plt.subplots(1, 2, figsize=(11, 4.2))
    _histogram(joins, report["join_latency_histogram"], report["join_latency_ms"], "join latency")
    _histogram(
        chat,
        report["message_latency_histogram"],
        report["message_latency_ms"],
        "message latency, send to each receiver",
    )
    fig.suptitle(
        f"roomsignal load-test: {plan['participants']} bots in {plan['rooms']} rooms, "
        f"{plan['duration']:g} s at {plan['message_rate']:g} msg/s per room, "
        f"chaos {plan['chaos']:g}/s ({report['chaos']['drops']} drops, "
        f"{report['resumed']} resumed); lost {messages['lost']}, "
        f"duplicated {messages['duplicated']}",
        fontsize=10,
    )
    fig.tight_layout()
    path = out / "load-test-latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fanout_chart(results: dict[str, Any], out: Path) -> Path:
    """The reference server's fan-out beside bare websockets broadcast()."""
    needed = ("fanout_notifications_per_s", "bare_fanout_notifications_per_s")
    if any(results.get(key) is None for key in needed):
        raise ValueError(
            "the benchmark JSON has no fan-out figures (run with the server benchmarks)"
        )
    labels = ["roomsignal\nreference server", "bare websockets\nbroadcast()"]
    fig, (rate, cpu) = plt.subplots(1, 2, figsize=(10, 4.2))
    medians = [results[key] / 1000 for key in needed]
    rate.bar(labels, medians, color=[BLUE, GREY], width=0.55)
    for x, key in enumerate(("fanout_runs", "bare_fanout_runs")):
        runs = [value / 1000 for value in results.get(key) or []]
        rate.scatter(
            [x] * len(runs), runs, color="black", s=14, zorder=3, label="runs" if x == 0 else None
        )
    for x, value in enumerate(medians):
        _inside(rate, x, value, f"{value:,.1f}k")
    ratio = results.get("fanout_ratio")
    rate.set_title(
        f"notifications/s to a room of {results.get('fanout_members')} "
        f"(median; ratio {ratio:.2f}, target >= 0.8)"
        if ratio
        else "notifications/s",
        fontsize=10,
    )
    rate.set_ylabel("thousand notifications per second")
    rate.legend(loc="lower right", fontsize=8)
    rate.grid(axis="y", alpha=0.3)
    cpu_keys = ("fanout_server_cpu_us", "bare_fanout_server_cpu_us")
    if all(results.get(key) is not None for key in cpu_keys):
        values = [results[key] for key in cpu_keys]
        cpu.bar(labels, values, color=[BLUE, GREY], width=0.55)
        for x, value in enumerate(values):
            _inside(cpu, x, value, f"{value:.1f} us")
        cpu_ratio = results.get("fanout_cpu_ratio")
        cpu.set_title(
            "server CPU per notification (lower is better"
            + (f"; bare/ref {cpu_ratio:.2f})" if cpu_ratio else ")"),
            fontsize=10,
        )
        cpu.set_ylabel("microseconds")
        cpu.grid(axis="y", alpha=0.3)
    else:
        cpu.set_axis_off()
    machine = results.get("machine") or {}
    fig.suptitle(
        f"fan-out, one member's chat to {results.get('fanout_members')} members, "
        f"{results.get('fanout_messages')} messages per burst; "
        f"{machine.get('nproc', '?')} x {machine.get('cpu', '?')}, git {machine.get('git_head', '?')}",
        fontsize=10,
    )
    fig.tight_layout()
    path = out / "fanout.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load-test", type=Path, help="roomsignal load-test --json output")
    parser.add_argument("--bench", type=Path, help="benchmarks/run.py --json output")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    if args.load_test is None and args.bench is None:
        parser.error("give --load-test, --bench, or both")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        if args.load_test is not None:
            print(load_test_chart(_last_json(args.load_test), args.out))
        if args.bench is not None:
            print(fanout_chart(_last_json(args.bench), args.out))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        print(f"charts.py: {detail}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
