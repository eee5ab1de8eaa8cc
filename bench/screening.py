"""How well, and how fast, sensitive-data screening finds special-category content.

    .venv/bin/python -m bench.screening [--dev-only] [--validation] [--errors] [--quick]

Reads the labelled corpus in ``tests/data/screening/`` (see its README): the **held-out** part,
which no recogniser change is tuned against, and the **development** part, which is the only
one whose mistakes may be looked at.  Screens every text for all nine categories and prints
recall, precision and F1 per category and overall, held-out first, then development (labelled
as such).  ``--errors`` lists the development part's mistakes; held-out texts are never printed.

Per category, a text counts as found when screening reports that category in it.  "any
category" counts a sensitive text as found when screening reports any category at all (that is
what decides whether something gets redacted) and a clean text as a false alarm when it reports
anything.

Speed, after a warm-up (the engine is built once): microseconds per text over the whole corpus,
next to a baseline measured in the same run (one ``re.search`` of a keyword list over the same
texts), and the cold start (importing presidio and spaCy, loading the lemma tables, building the
engine).  A web form screens one text per request, so the per-text time is what a person waits.
``--quick`` times one round over a quarter of the texts.

``--validation`` also scores the validation batches ``validation_cls.tsv`` to
``validation_cls7.tsv``, written blind for the December 2026 classifier experiments (see the
corpus README).  Each was scored blind once for its experiment; since rounds 60 and 61 (7 December
2026) they are development text, so ``--errors`` lists their mistakes too.  It also scores
``validation_real1.tsv``, excerpts written by other people (round 65), development text since.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench._report import report

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "screening"
DEV = DATA / "dev.tsv"
HELDOUT = DATA / "heldout.tsv"
# Development texts written after the split (see the corpus README): tuned on, reported apart.
DEV_EXTRA = DATA / "dev_extra.tsv"
# Blind batches that nothing is tuned on (see the corpus README): figures only, never their texts.
VALIDATION = tuple(DATA / f"validation_cls{n}.tsv" for n in ("", "2", "3", "4", "5", "6", "7"))
# Round 65: excerpts written by other people (openly licensed, sources in the file's header).
VALIDATION_REAL = (DATA / "validation_real1.tsv",)
RECALL_TARGET = 0.95
PRECISION_TARGET = 0.95

# The baseline: the kind of keyword list a first attempt would grep for.
BASELINE = re.compile(
    r"\b(?:depression|diabetes|cancer|disabled|pregnant|hospital|muslim|christian|jewish|church"
    r"|mosque|pray|labour|conservative|tory|vote|party|black|ethnic|heritage|gay|lesbian"
    r"|bisexual|union|strike|genetic|dna|fingerprint|facial|biometric|conviction|prison"
    r"|arrested|criminal|probation)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Example:
    id: str
    categories: frozenset[str]
    register: str
    text: str

    @property
    def label(self) -> bool:
        return bool(self.categories)


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def f1(self) -> float:
        r, p = self.recall, self.precision
        return 2 * r * p / (r + p) if r + p else 0.0


@dataclass
class Report:
    overall: Counts = field(default_factory=Counts)
    per_category: dict[str, Counts] = field(default_factory=dict)
    mistakes: list[tuple[Example, frozenset[str]]] = field(default_factory=list)
    size: int = 0

    @property
    def micro(self) -> Counts:
        """Every (text, category) decision pooled."""
        return Counts(
            tp=sum(c.tp for c in self.per_category.values()),
            fp=sum(c.fp for c in self.per_category.values()),
            fn=sum(c.fn for c in self.per_category.values()),
        )

    def meets(self) -> bool:
        return all(
            c.recall >= RECALL_TARGET and c.precision >= PRECISION_TARGET
            for c in [self.overall, *self.per_category.values()]
        )


def load_examples(path: Path) -> list[Example]:
    """One part of the corpus (``DEV`` or ``HELDOUT``)."""
    with path.open(encoding="utf-8", newline="") as fp:
        lines = [line for line in fp if not line.startswith("#")]  # a batch's source notes
        rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, *rows = rows
    if header != ["id", "categories", "register", "text"]:
        raise ValueError(f"{path}: expected columns id, categories, register, text; got {header}")
    return [
        Example(id, frozenset(c for c in categories.split(",") if c), register, text)
        for id, categories, register, text in rows
    ]


def evaluate(
    examples: Iterable[Example], detect: Callable[[str], Iterable[str]], categories: Iterable[str]
) -> Report:
    """Score ``detect`` (text -> categories found) against the labels."""
    report = Report(per_category={c: Counts() for c in categories})
    for example in examples:
        found = frozenset(detect(example.text))
        report.size += 1
        if example.label and found:
            report.overall.tp += 1
        elif example.label:
            report.overall.fn += 1
        elif found:
            report.overall.fp += 1
        for category, counts in report.per_category.items():
            labelled, predicted = category in example.categories, category in found
            counts.tp += labelled and predicted
            counts.fn += labelled and not predicted
            counts.fp += predicted and not labelled
        if found != example.categories:
            report.mistakes.append((example, found))
    return report


def _line(name: str, counts: Counts) -> str:
    flag = "" if counts.recall >= RECALL_TARGET and counts.precision >= PRECISION_TARGET else " *"
    return (
        f"  {name:<36} recall {counts.recall:5.3f}  precision {counts.precision:5.3f}  "
        f"F1 {counts.f1:5.3f}   (tp {counts.tp:4}, fp {counts.fp:3}, fn {counts.fn:3}){flag}"
    )


def print_report(title: str, report: Report) -> None:
    positives = report.overall.tp + report.overall.fn
    print(f"\n{title}: {report.size} texts ({positives} sensitive)")
    print(_line("any category (text level)", report.overall))
    print(_line("all categories (pooled)", report.micro))
    for category, counts in report.per_category.items():
        print(_line(category, counts))


def _per_text_us(func: Callable[[str], object], texts: list[str], rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for text in texts:
            func(text)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) / len(texts) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--errors", action="store_true", help="list the development part's mistakes"
    )
    parser.add_argument("--quick", action="store_true", help="time one round over fewer texts")
    parser.add_argument(
        "--dev-only",
        action="store_true",
        help="while tuning: score only the development part (and the extra development texts), "
        "so that not even the held-out totals are seen",
    )
    parser.add_argument(
        "--validation",
        action="store_true",
        help="also score the classifier experiments' validation batches (development text since "
        "rounds 60 and 61)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (median is shown)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    from tidings.policy.screening import CATEGORIES, Screener

    screener = Screener()
    screener.find("I'm a Unite union rep.", CATEGORIES)  # builds the engine
    cold = time.perf_counter() - started

    def detect(text: str) -> set[str]:
        return {f.category for f in screener.find(text, CATEGORIES)}

    heldout, dev = load_examples(HELDOUT), load_examples(DEV)
    print(f"corpus: {DATA.relative_to(Path.cwd()) if DATA.is_relative_to(Path.cwd()) else DATA}")
    print(f"targets: recall >= {RECALL_TARGET}, precision >= {PRECISION_TARGET} (* = missed)")

    if not args.dev_only:
        held = evaluate(heldout, detect, CATEGORIES)
        print_report("HELD-OUT part (never tuned against)", held)
    devel = evaluate(dev, detect, CATEGORIES)
    print_report("development part (the rules are tuned on this one)", devel)
    extra = evaluate(load_examples(DEV_EXTRA), detect, CATEGORIES) if DEV_EXTRA.exists() else None
    if extra:
        print_report("extra development texts (written after the split, tuned on)", extra)
    validation_mistakes: list[tuple[Example, frozenset[str]]] = []
    if args.validation:
        for number, path in enumerate(VALIDATION, 1):
            validation = evaluate(load_examples(path), detect, CATEGORIES)
            print_report(f"validation batch {number} (development text since round 60)", validation)
            validation_mistakes += validation.mistakes
        for path in VALIDATION_REAL:
            validation = evaluate(load_examples(path), detect, CATEGORIES)
            print_report(f"{path.name} (text by other people, round 65)", validation)
            validation_mistakes += validation.mistakes
    if not args.dev_only:
        print(
            f"\nheld-out: targets {'met' if held.meets() else 'NOT MET'} (any category: "
            f"recall {held.overall.recall:.3f}, precision {held.overall.precision:.3f})"
        )
    if args.errors:
        print("\ndevelopment part's mistakes (expected -> found):")
        for example, found in (
            devel.mistakes + (extra.mistakes if extra else []) + validation_mistakes
        ):
            expected = ",".join(sorted(example.categories)) or "-"
            got = ",".join(sorted(found)) or "-"
            print(f"  {example.id} {expected:<40} -> {got:<40} {example.text}")

    texts = [e.text for e in heldout + dev]  # timing only: nothing about them is printed
    rounds = args.rounds
    if args.quick:
        texts, rounds = texts[::4], 1
    screening = _per_text_us(lambda s: screener.find(s, CATEGORIES), texts, rounds)
    baseline = _per_text_us(BASELINE.search, texts, rounds)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nspeed (median of {rounds} round(s) over {len(texts)} texts; load {load:.2f})")
    print(f"  cold start (import presidio + spaCy, lemma tables, engine): {cold:.2f} s")
    print(f"  screening, all nine categories: {screening:8.0f} µs per text")
    print(f"  baseline re.search of keywords: {baseline:8.1f} µs per text")
    print(f"  screening costs {screening / baseline:,.0f}x the baseline")
    if not args.dev_only:
        # The target is per category, for recall and precision alike: the table shows the
        # weakest of those eighteen figures, so "met" there means met everywhere.
        weakest = min(min(counts.recall, counts.precision) for counts in held.per_category.values())
        report(
            "screening",
            "held-out, weakest category recall or precision",
            weakest,
            "",
            target=min(RECALL_TARGET, PRECISION_TARGET),
            higher_is_better=True,
            scale=f"{len(heldout)} held-out texts",
        )
    report(
        "screening",
        "screening one text",
        screening,
        "µs",
        baseline=baseline,
        baseline_label="re.search of keywords",
        scale=f"{len(texts)} texts",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
