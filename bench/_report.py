"""One way for every benchmark to hand its headline figure to ``bench.run_all``.

A benchmark calls ``report(...)`` once per headline figure after printing its own detailed table.
The figure is always printed as a ``result:`` line; when ``TIDINGS_BENCH_REPORT`` names a file
(``bench.run_all`` sets it, or run a benchmark by hand with it set), the figure is also appended
to that file as one JSON object per line, with the load average at the moment it was measured.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

REPORT_ENV = "TIDINGS_BENCH_REPORT"


@dataclass(frozen=True)
class Result:
    benchmark: str
    figure: str  # what was measured, e.g. "p95 GET /api/contacts/{id}"
    value: float
    unit: str  # "ms", "msg/s", "rows/s", "s", "req/s", "MB"
    baseline: float | None  # the same job's baseline measured in the same run
    baseline_label: str  # what the baseline is
    target: float | None  # None: no target, the figure is informative
    higher_is_better: bool
    scale: str  # e.g. "10,000 contacts"
    load: float  # 1-minute load average when reported

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target


def report(
    benchmark: str,
    figure: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_label: str = "",
    target: float | None = None,
    higher_is_better: bool = False,
    scale: str = "",
) -> Result:
    """Print the headline figure and, under ``bench.run_all``, record it."""
    result = Result(
        benchmark=benchmark,
        figure=figure,
        value=float(value),
        unit=unit,
        baseline=None if baseline is None else float(baseline),
        baseline_label=baseline_label,
        target=None if target is None else float(target),
        higher_is_better=higher_is_better,
        scale=scale,
        load=os.getloadavg()[0],
    )
    ratio = f", {result.ratio:.3g}× {baseline_label}" if result.ratio is not None else ""
    met = {None: "", True: " — target met", False: " — target MISSED"}[result.met]
    print(
        f"result: {benchmark}: {figure} = {_number(float(value))} {unit}{ratio}{met} "
        f"(load {result.load:.1f}, {scale})"
    )
    path = os.environ.get(REPORT_ENV)
    if path:
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(result)) + "\n")
    return result


def read(path: str) -> list[Result]:
    results = []
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                results.append(Result(**json.loads(line)))
    return results


def _number(value: float) -> str:
    """A figure with the digits it needs: 1,234.5 and 27.3 as before, but a recall of 0.971 no
    longer prints as "1.0"."""
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
