"""How well, and how fast, sensitive-data screening finds special-category content.

    .venv/bin/python -m bench.screening [--errors] [--rounds 5]

Reads the labelled set ``tests/data/sensitive_sentences.tsv`` (label 1/0, categories, sentence),
screens every sentence for all nine categories and prints recall, precision and F1 overall and per
category, for the tuning split, the held-out split (every 4th sentence: rows 4, 8, 12, ... counting
data rows from 1) and the whole set.  ``tests/policy/test_screening.py`` guards the whole set at
recall >= 0.95 and precision >= 0.9 with the same functions.

A sentence counts as found when screening reports any category in it (that is what decides
whether it gets redacted); per category, when it reports that category.  ``--errors`` lists the
tuning split's mistakes; the held-out split's sentences are never printed, so that tuning the
rules against this output cannot fit them.

Speed: sentences per second screening the whole set (after a warm-up; the engine is built once),
next to a baseline measured in the same run: a plain ``re.search`` of one keyword list over the
same sentences.  Also the cold start (importing presidio and spaCy, building the engine) and the
cost of a sentence that the pre-filter passes to presidio versus one it answers alone.
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "sensitive_sentences.tsv"
RECALL_TARGET = 0.95
PRECISION_TARGET = 0.9

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
    label: bool
    categories: frozenset[str]
    sentence: str
    held_out: bool


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


def load_examples(path: Path = DATA) -> list[Example]:
    """The labelled set; every 4th data row is held out from tuning."""
    with path.open(encoding="utf-8", newline="") as fp:
        rows = list(csv.reader(fp, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, *rows = rows
    if header != ["label", "category", "sentence"]:
        raise ValueError(f"{path}: expected columns label, category, sentence; got {header}")
    examples = []
    for number, (label, categories, sentence) in enumerate(rows, start=1):
        if label not in {"0", "1"} or (label == "1") != bool(categories):
            raise ValueError(f"{path}: data row {number}: a label 1 needs a category, 0 none")
        examples.append(
            Example(
                label=label == "1",
                categories=frozenset(c for c in categories.split(",") if c),
                sentence=sentence,
                held_out=number % 4 == 0,
            )
        )
    return examples


def evaluate(
    examples: Iterable[Example], detect: Callable[[str], Iterable[str]], categories: Iterable[str]
) -> Report:
    """Score ``detect`` (sentence -> categories found) against the labels."""
    report = Report(per_category={c: Counts() for c in categories})
    for example in examples:
        found = frozenset(detect(example.sentence))
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
    return (
        f"  {name:<36} recall {counts.recall:5.3f}  precision {counts.precision:5.3f}  "
        f"F1 {counts.f1:5.3f}   (tp {counts.tp}, fp {counts.fp}, fn {counts.fn})"
    )


def _per_second(func: Callable[[str], object], sentences: list[str], rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for sentence in sentences:
            func(sentence)
        timings.append(time.perf_counter() - started)
    return len(sentences) / statistics.median(timings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--errors", action="store_true", help="list the tuning split's wrong or missed categories"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (median is shown)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    from tidings.policy.screening import CATEGORIES, Screener

    screener = Screener()
    screener.find("I'm a Unite union rep.", CATEGORIES)  # builds the engine
    cold = time.perf_counter() - started

    def detect(sentence: str) -> set[str]:
        return {f.category for f in screener.find(sentence, CATEGORIES)}

    examples = load_examples()
    splits = {
        "tuning": [e for e in examples if not e.held_out],
        "held-out (every 4th)": [e for e in examples if e.held_out],
        "whole set": examples,
    }
    positives = sum(e.label for e in examples)
    print(f"labelled set: {DATA.name}, {len(examples)} sentences ({positives} sensitive)")
    for name, subset in splits.items():
        report = evaluate(subset, detect, CATEGORIES)
        print(f"\n{name}: {report.size} sentences")
        print(_line("overall", report.overall))
        for category, counts in report.per_category.items():
            print(_line(category, counts))
        if name == "whole set":
            ok = (
                report.overall.recall >= RECALL_TARGET
                and report.overall.precision >= PRECISION_TARGET
            )
            print(
                f"  targets: recall >= {RECALL_TARGET}, precision >= {PRECISION_TARGET}: "
                f"{'met' if ok else 'NOT MET'}"
            )
        if args.errors and name == "tuning":
            for example, found in report.mistakes:
                expected = ",".join(sorted(example.categories)) or "-"
                print(f"    expected {expected:<30} got {','.join(sorted(found)) or '-':<30} "
                      f"{example.sentence}")  # fmt: skip

    sentences = [e.sentence for e in examples]
    prefilter = screener._prefilter(CATEGORIES)
    passed = [s for s in sentences if prefilter.search(s)]
    ordinary = [s for s in sentences if not prefilter.search(s)]
    screening = _per_second(lambda s: screener.find(s, CATEGORIES), sentences, args.rounds)
    baseline = _per_second(BASELINE.search, sentences, args.rounds)
    print(f"\nspeed (median of {args.rounds} rounds over the {len(sentences)} sentences)")
    print(f"  cold start (import presidio + spaCy, build engine): {cold:.2f} s")
    print(f"  screening, all categories:   {screening:10,.0f} sentences/s")
    print(f"  baseline re.search keywords: {baseline:10,.0f} sentences/s")
    print(f"  screening costs {baseline / screening:,.0f}x the baseline")
    if passed:
        rate = _per_second(lambda s: screener.find(s, CATEGORIES), passed, args.rounds)
        print(f"  {len(passed)} sentences reach presidio: {1e6 / rate:8.0f} µs each")
    if ordinary:
        rate = _per_second(lambda s: screener.find(s, CATEGORIES), ordinary, args.rounds)
        print(f"  {len(ordinary)} answered by the pre-filter alone: {1e6 / rate:8.1f} µs each")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
