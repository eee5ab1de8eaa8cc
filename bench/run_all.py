"""Every benchmark at a quick scale, one after the other, and one table of their headline figures.

    .venv/bin/python -m bench.run_all [--only api,dashboard] [--timeout 240]    (make bench)

Each benchmark runs as its own process (``python -m bench.<name> <quick arguments>``) with
``TIDINGS_BENCH_REPORT`` naming a file it appends its figures to (``bench/_report.py``); its full
output goes to a log file in a temporary directory (printed at the start), and the table at the
end shows, for each figure: the value, the baseline measured in the same run, their ratio, the
target and whether it was met, with the load average when it was measured.  A benchmark that fails
or overruns ``--timeout`` is shown as such and the others still run.

The quick scales are small so that the whole run takes under ten minutes on a busy 2-core
machine: they show that every benchmark works and roughly where it stands, not the full-scale
figures the targets are about (those are in bench/RESULTS.md, with their scale and load).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._report import REPORT_ENV, Result, read
from bench.common import ROOT, SERVER

POSTGRES = f"{SERVER}/postgres"

# name: the quick arguments.  Ordered cheapest first, so a short --timeout still shows most.
QUICK: dict[str, list[str]] = {
    "render": ["--messages", "2000", "--runs", "2"],
    "segments": ["--contacts", "10000", "--events", "50000", "--runs", "3"],
    "api": ["--contacts", "10000", "--requests", "50"],
    "dashboard": ["--contacts", "10000", "--deliveries", "40000", "--runs", "10"],
    "metrics": ["--rows", "50000", "--database-url", POSTGRES],
    "reports": ["--deliveries", "20000", "--events", "100000", "--runs", "2"],
    "deliverability": ["--recipients", "5000", "--database-url", POSTGRES],
    "tracking": ["--seconds", "1", "--deliveries", "2000"],
    "retention": ["--enquiries", "10000", "--fresh", "1000"],
    "rights": ["--contacts", "20000", "--events", "200000", "--outbox", "2000", "--people", "10"],
    "import_contacts": [
        *("--quick", "--rows", "20000", "--existing", "20000", "--database-url", POSTGRES)
    ],
    "delivery": [
        *("--recipients", "2000", "--bare-messages", "1500", "--memory", "0"),
        *("--workers", "1,2", "--limit-seconds", "60"),
    ],
    "journeys": ["--people", "5000", "--due", "500", "--feed-seconds", "3"],
    "analytics": ["--seconds", "1", "--rounds", "1", "--database-url", POSTGRES],
    "screening": ["--quick"],
}


def _run(name: str, args: list[str], report: Path, log: Path, timeout: float) -> str:
    """Run one benchmark; returns "" or what went wrong."""
    before = len(read(str(report)))

    def reported() -> bool:
        return len(read(str(report))) > before

    env = dict(os.environ, **{REPORT_ENV: str(report)})
    with log.open("w", encoding="utf-8") as out:
        # Its own process group, so that an overrun stops its servers and sinks too; SIGINT
        # first, so that it drops its database on the way out.
        process = subprocess.Popen(
            [sys.executable, "-u", "-m", f"bench.{name}", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            return f"stopped after {timeout:.0f} s"
    # Exit status 1 is how several benchmarks say "target missed" (in the table already), but
    # also how Python ends on an exception: that one reports nothing.
    if returncode == 0 or (returncode == 1 and reported()):
        return ""
    return f"exit status {returncode}"


def _figure(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = (
        f"{value:,.0f}"
        if abs(value) >= 100
        else f"{value:,.2f}"
        if abs(value) < 10
        else (f"{value:,.1f}")
    )
    return f"{text} {unit}".strip()


def table(results: list[Result], problems: dict[str, str]) -> str:
    header = ("benchmark", "figure", "value", "baseline", "ratio", "target", "met", "load", "scale")
    rows = [header]
    for r in results:
        target = (
            None
            if r.target is None
            else ("≥ " if r.higher_is_better else "≤ ") + _figure(r.target, r.unit)
        )
        rows.append(
            (
                r.benchmark,
                r.figure,
                _figure(r.value, r.unit),
                _figure(r.baseline, r.unit) if r.baseline is not None else "—",
                f"{r.ratio:.3g}×" if r.ratio is not None else "—",
                target or "—",
                {None: "—", True: "yes", False: "NO"}[r.met],
                f"{r.load:.1f}",
                r.scale,
            )
        )
    for name, problem in problems.items():
        rows.append((name, f"FAILED: {problem}", "", "", "", "", "", "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--timeout", type=float, default=240, help="seconds per benchmark")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(QUICK)
    unknown = [n for n in names if n not in QUICK]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(QUICK)}")

    workdir = Path(tempfile.mkdtemp(prefix="tidings_bench_"))
    report = workdir / "results.jsonl"
    report.touch()
    print(f"logs in {workdir}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    problems: dict[str, str] = {}
    started = time.perf_counter()
    for name in names:
        began = time.perf_counter()
        print(f"  {name:<16}", end="", flush=True)
        problem = _run(name, QUICK[name], report, workdir / f"{name}.log", args.timeout)
        if problem:
            problems[name] = f"{problem} (see {workdir / f'{name}.log'})"
        print(f"{time.perf_counter() - began:6.0f} s  {problem or 'done'}", flush=True)
    total = time.perf_counter() - started
    results = read(str(report))
    print(f"\n{table(results, problems)}")
    print(
        f"\n{len(names)} benchmarks in {total / 60:.1f} min at quick scales; load average now "
        f"{os.getloadavg()[0]:.1f}.  Full-scale figures: bench/RESULTS.md."
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
