"""Experiment: a statistical second opinion beside the screening rules.

    .venv/bin/python -m bench.screening_cls

A one-vs-rest logistic regression per category (scikit-learn, liblinear, balanced class
weights, C=16) over the text's spaCy lookup lemmas (word 1- and 2-grams) and its character 3- to
5-grams (misspellings), trained deterministically on the development texts (``dev.tsv`` and
``dev_extra.tsv``; never the held-out part).  Combined with the rules per category: a rule
finding is vetoed when P < t_low, and a category the rules missed is added when P > t_high.

1. 5-fold cross-validation on the development texts (seed 20261206): out-of-fold
   probabilities, then per category the (t_low, t_high) with the best F1, switched on only when
   it gains at least 0.001 F1 over the rules alone.
2. The classifier trained on all development texts, scored once on the blind validation batch
   ``validation_cls.tsv``: rules alone, rules + classifier (the chosen thresholds) and the
   classifier alone (P > 0.5), per category, text level.

Experiment 2 (after experiment 1's validation run): the thresholds chosen instead on the texts
of blind rounds 13-34 as the rules of the commit before each round scored them (rules that had
not seen them; ``git archive`` of each round's parent, run in a subprocess), with the same
out-of-fold probabilities and a wider grid, then scored once on a second blind batch,
``validation_cls2.tsv``, written before this experiment ran.  Experiment 3 (a scratch copy):
experiment 2's thresholds with race switched off, scored on ``validation_cls3.tsv``.

Experiment 4 (this version): the same classifier trained on ``dev.tsv`` + ``dev_extra.tsv`` as
they are now, the thresholds chosen by experiment 2's procedure on the texts of blind rounds
13-59 (every round whose commit is known: rounds 13-34 add their batch and change the rules in one
commit, rounds 35-59 commit the batch alone first; either way the rules of the commit's parent had
not seen it), every category's switches as that procedure chooses them.  ``--choose`` prints the
choice and touches no validation batch; ``--score`` asserts the choice is the one registered
below (``REGISTERED``, written into the commit that added ``validation_cls4.tsv`` before it was
ever run) and scores that batch once: rules alone, combined, classifier alone.  It was scored
once on 7 December 2026 and missed the bar fixed before the run (text-level recall 0.768 -> 0.869
and precision 0.916 -> 0.977, but racial or ethnic origin's F1 1.000 -> 0.923 by one vetoed
text), so the classifier is not in the product; figures in the corpus README, "Experiment 4".

Experiment 5: experiment 4's registered thresholds exactly, with racial or ethnic origin's t_low
and t_high off (the rules alone decide origin), the same classifier and training data.  That
choice was made by looking at ``validation_cls4.tsv``, so it is judged on a fifth blind batch,
``validation_cls5.tsv``, written and committed with this configuration before it was run:
``--score5`` asserts that the procedure still chooses experiment 4's thresholds, drops origin's
switches and scores that batch once.  It was scored once on 7 December 2026 and passed all three
conditions of the bar (text-level recall 0.835 -> 0.897, precision 0.910 -> 0.967, no category's
F1 lower); it is not yet in the product: the integration and the held-out run come later.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.screening import DATA, DEV, DEV_EXTRA, Counts, Example, load_examples

VALIDATION = DATA / "validation_cls.tsv"
VALIDATION2 = DATA / "validation_cls2.tsv"
VALIDATION4 = DATA / "validation_cls4.tsv"
VALIDATION5 = DATA / "validation_cls5.tsv"
CACHE = Path(tempfile.gettempdir()) / "tidings-screening-cls-rounds.json"
SEED = 20261206
C = 16.0
FOLDS = 5
T_LOW = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
T_HIGH = (1.01, 0.995, 0.99, 0.98, 0.97, 0.95, 0.9)  # 1.01: never add
MIN_GAIN = 0.001
T_LOW2 = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
T_HIGH2 = (1.01, 0.99, 0.97, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5)
# The commits of blind rounds 13-34 (each adds its batch to dev_extra.tsv and changes the rules):
# the rules of each one's parent are the rules that had not seen that batch.
ROUND_COMMITS = (
    *("0b2b89d", "e73d527", "f4f15ba", "39d4bab", "0a493d3", "686b969", "329c365", "8497046"),
    *("2c3c657", "b1015e6", "90bc52c", "9ed6995", "1606d62", "da9e04e", "855d48c", "cab52c2"),
    *("a92789e", "2cc9a55", "3c14595", "8312a95", "15b4a58", "2bd1084"),
)
# Rounds 35-59 (bk ... ci): each batch was committed alone, before any rule saw it.
ROUND_COMMITS_LATER = (
    *("ddcee15", "81c5f90", "93c9f01", "fc45e04", "7a12776", "fbdb8f8", "d097647", "a3b49bc"),
    *("7e46501", "64592f4", "6530ddf", "fbfc388", "e74e64b", "4c5dcab", "847b89e", "d14c51f"),
    *("8064ae1", "471b7d6", "6cbc857", "9d4c77d", "ccfcf0d", "ef35f4b", "b77d9d0", "750aefc"),
    "59583c0",
)
_SCORE_OLD = """
import json, sys
from tidings.policy.screening import CATEGORIES, Screener
import tidings.policy.screening as module
assert module.__file__.startswith(sys.argv[1])
screener = Screener()
rows = json.load(sys.stdin)
found = {i: sorted({f.category for f in screener.find(t, CATEGORIES)}) for i, t in rows}
json.dump(found, sys.stdout)
"""


class Classifier:
    """P(category | text) per category, from lemma word n-grams and character n-grams."""

    def __init__(self, categories: Sequence[str]):
        self.categories = tuple(categories)
        self.models: dict[str, Any] = {}

    def _matrix(self, lemmas: Sequence[str], texts: Sequence[str], fit: bool) -> Any:
        from scipy.sparse import hstack
        from sklearn.feature_extraction.text import TfidfVectorizer

        if fit:
            self.words = TfidfVectorizer(
                ngram_range=(1, 2),
                min_df=2,
                sublinear_tf=True,
                token_pattern=r"(?u)\b\w+\b",  # noqa: S106 (a regex, not a password)
            )
            self.chars = TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=(3, 5),
                min_df=2,
                sublinear_tf=True,
                max_features=60000,
            )
            return hstack([self.words.fit_transform(lemmas), self.chars.fit_transform(texts)])
        return hstack([self.words.transform(lemmas), self.chars.transform(texts)]).tocsr()

    def fit(
        self, lemmas: Sequence[str], texts: Sequence[str], labels: Sequence[frozenset[str]]
    ) -> Classifier:
        from sklearn.linear_model import LogisticRegression

        matrix = self._matrix(lemmas, texts, fit=True).tocsr()
        for category in self.categories:
            model = LogisticRegression(
                C=C, solver="liblinear", class_weight="balanced", random_state=SEED
            )
            self.models[category] = model.fit(matrix, [category in label for label in labels])
        return self

    def predict(self, lemmas: Sequence[str], texts: Sequence[str]) -> list[dict[str, float]]:
        matrix = self._matrix(lemmas, texts, fit=False)
        columns = {c: m.predict_proba(matrix)[:, 1] for c, m in self.models.items()}
        return [{c: float(columns[c][i]) for c in self.categories} for i in range(len(texts))]


def combine(
    rules: frozenset[str], p: dict[str, float], t_low: dict[str, float], t_high: dict[str, float]
) -> frozenset[str]:
    return frozenset(
        c
        for c in p
        if (c in rules and p[c] >= t_low.get(c, 0.0))
        or (c not in rules and p[c] > t_high.get(c, 2))
    )


def counts(examples: Sequence[Example], found: Sequence[frozenset[str]], category: str) -> Counts:
    result = Counts()
    for example, got in zip(examples, found, strict=True):
        labelled, predicted = category in example.categories, category in got
        result.tp += labelled and predicted
        result.fp += predicted and not labelled
        result.fn += labelled and not predicted
    return result


def text_level(examples: Sequence[Example], found: Sequence[frozenset[str]]) -> Counts:
    result = Counts()
    for example, got in zip(examples, found, strict=True):
        result.tp += example.label and bool(got)
        result.fn += example.label and not got
        result.fp += bool(got) and not example.label
    return result


Thresholds = tuple[dict[str, float], dict[str, float]]


def choose(
    examples: Sequence[Example],
    rules: Sequence[frozenset[str]],
    probabilities: Sequence[dict[str, float]],
    lows: Sequence[float],
    highs: Sequence[float],
) -> Thresholds:
    """Per category the (t_low, t_high) with the best F1, if it gains at least MIN_GAIN."""
    from tidings.policy.screening import CATEGORIES

    t_low: dict[str, float] = {}
    t_high: dict[str, float] = {}
    for category in CATEGORIES:
        best = (counts(examples, rules, category).f1 + MIN_GAIN, 0.0, 1.01)
        for low in lows:
            for high in highs:
                found = [
                    combine(r, p, {category: low}, {category: high}) & {category}
                    for r, p in zip(rules, probabilities, strict=True)
                ]
                f1 = counts(examples, found, category).f1
                if f1 > best[0] + 1e-9:
                    best = (f1, low, high)
        if best[1] > 0:
            t_low[category] = best[1]
        if best[2] <= 1:
            t_high[category] = best[2]
    return t_low, t_high


def show_thresholds(title: str, thresholds: Thresholds) -> None:
    from tidings.policy.screening import CATEGORIES

    print(f"\n{title} (F1 gain >= {MIN_GAIN}):")
    for category in CATEGORIES:
        low, high = thresholds[0].get(category), thresholds[1].get(category)
        print(
            f"  {category:<36} t_low {'off' if low is None else low:<5} "
            f"t_high {'off' if high is None else high}"
        )


def historical_rules(commits: Sequence[str]) -> dict[str, frozenset[str]]:
    """Each blind round's texts as the rules of the commit before that round found them.

    Cached per commit in ``CACHE`` (a commit's parent never changes, so neither does the answer).
    """
    import subprocess

    root = DATA.parents[2]
    cache: dict[str, dict[str, list[str]]] = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    found: dict[str, frozenset[str]] = {}

    def rows(revision: str) -> dict[str, str]:
        tsv = subprocess.run(
            ["git", "show", f"{revision}:tests/data/screening/dev_extra.tsv"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return {line.split("\t")[0]: line.split("\t")[3] for line in tsv.splitlines()[1:] if line}

    for commit in commits:
        if commit not in cache:
            before = rows(f"{commit}^")
            new = [(i, t) for i, t in rows(commit).items() if i not in before]
            with tempfile.TemporaryDirectory() as tree:
                archive = subprocess.run(
                    ["git", "archive", f"{commit}^", "src/tidings"],
                    cwd=root,
                    capture_output=True,
                    check=True,
                ).stdout
                subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
                src = f"{tree}/src"
                out = subprocess.run(
                    [sys.executable, "-c", _SCORE_OLD, src],
                    input=json.dumps(new),
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "PYTHONPATH": src},
                ).stdout
            cache[commit] = json.loads(out)
            CACHE.write_text(json.dumps(cache))
            print(f"  rules before {commit}: {len(cache[commit])} texts", flush=True)
        found.update({i: frozenset(c) for i, c in cache[commit].items()})
    return found


def _cell(counts: Counts) -> str:
    figures = f"R {counts.recall:5.3f} P {counts.precision:5.3f}"
    return f"{figures} (tp {counts.tp:3} fp {counts.fp:2} fn {counts.fn:2})"


def table(
    title: str,
    examples: Sequence[Example],
    columns: dict[str, Sequence[frozenset[str]]],
    cats: Sequence[str],
) -> None:
    print(f"\n{title}: {len(examples)} texts ({sum(e.label for e in examples)} sensitive)")
    print(f"  {'':26}" + "".join(f"{name:<40}" for name in columns))
    print(
        f"  {'any category (text level)':26}"
        + "".join(f"{_cell(text_level(examples, f)):<40}" for f in columns.values())
    )
    for category in cats:
        print(
            f"  {category[:26]:26}"
            + "".join(f"{_cell(counts(examples, f, category)):<40}" for f in columns.values())
        )


# Experiment 4's thresholds, chosen by ``--choose`` before ``validation_cls4.tsv`` was run and
# written into the commit that added that batch: (t_low, t_high) per category.
REGISTERED: Thresholds | None = (
    {
        "racial_or_ethnic_origin": 0.05,
        "political_opinions": 0.1,
        "religious_or_philosophical_beliefs": 0.2,
        "trade_union_membership": 0.05,
        "genetic": 0.2,
        "biometric": 0.3,
        "health": 0.1,
        "sex_life_or_orientation": 0.05,
        "criminal_history": 0.2,
    },
    {
        "racial_or_ethnic_origin": 0.7,
        "political_opinions": 0.9,
        "religious_or_philosophical_beliefs": 0.7,
        "genetic": 0.99,
        "biometric": 0.5,
        "health": 0.8,
        "sex_life_or_orientation": 0.95,
        "criminal_history": 0.8,
    },
)


# Experiment 5's configuration, fixed before ``validation_cls5.tsv`` was run: experiment 4's
# registered thresholds with racial or ethnic origin's two switches off.
OFF5 = "racial_or_ethnic_origin"


def experiment5(thresholds: Thresholds) -> Thresholds:
    t_low, t_high = thresholds
    return (
        {c: v for c, v in t_low.items() if c != OFF5},
        {c: v for c, v in t_high.items() if c != OFF5},
    )


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    import numpy

    from tidings.policy.screening import _FOLD, CATEGORIES, Screener

    parser = argparse.ArgumentParser(prog="python -m bench.screening_cls")
    parser.add_argument("--score", action="store_true", help="score validation_cls4.tsv once")
    parser.add_argument(
        "--score5", action="store_true", help="experiment 5: score validation_cls5.tsv once"
    )
    args = parser.parse_args(argv)

    screener = Screener()
    engine = screener._get_engine()

    def prepare(examples: list[Example]) -> tuple[list[frozenset[str]], list[str]]:
        rules, lemmas = [], []
        for example in examples:
            rules.append(frozenset(f.category for f in screener.find(example.text, CATEGORIES)))
            doc = engine.nlp_engine.process_text(example.text.translate(_FOLD), "en").tokens
            lemmas.append(" ".join(t.lemma_.lower() for t in doc if not (t.is_space or t.is_punct)))
        return rules, lemmas

    dev = load_examples(DEV) + load_examples(DEV_EXTRA)
    _, dev_lemmas = prepare(dev)
    texts = [e.text for e in dev]
    labels = [e.categories for e in dev]

    folds = numpy.array_split(numpy.random.RandomState(SEED).permutation(len(dev)), FOLDS)
    oof: list[dict[str, float]] = [{} for _ in dev]
    started = time.perf_counter()
    for k in range(FOLDS):
        test = set(folds[k].tolist())
        train = [i for i in range(len(dev)) if i not in test]
        held = sorted(test)
        model = Classifier(CATEGORIES).fit(
            [dev_lemmas[i] for i in train], [texts[i] for i in train], [labels[i] for i in train]
        )
        for i, p in zip(
            held,
            model.predict([dev_lemmas[i] for i in held], [texts[i] for i in held]),
            strict=True,
        ):
            oof[i] = p
    cv_seconds = (time.perf_counter() - started) / FOLDS

    # The thresholds chosen where the rules had not seen the text: each blind round's batch as
    # the rules of the commit before that round scored it, the classifier out of fold.
    old_rules = historical_rules(ROUND_COMMITS + ROUND_COMMITS_LATER)
    blind = [i for i, e in enumerate(dev) if e.id in old_rules]
    blind_examples = [dev[i] for i in blind]
    blind_rules = [old_rules[dev[i].id] for i in blind]
    blind_p = [oof[i] for i in blind]
    exp4 = choose(blind_examples, blind_rules, blind_p, T_LOW2, T_HIGH2)
    show_thresholds(
        f"experiment 4: thresholds on the {len(blind)} blind-round texts of rounds 13-59 "
        "(rules as before each round)",
        exp4,
    )
    print(f"  as a literal: {exp4!r}")
    table(
        "blind rounds 13-59 (rules as before each round; classifier out-of-fold)",
        blind_examples,
        {
            "rules before the round": blind_rules,
            "rules + classifier (exp. 4)": [
                combine(r, p, *exp4) for r, p in zip(blind_rules, blind_p, strict=True)
            ],
            "classifier alone": [frozenset(c for c, v in p.items() if v > 0.5) for p in blind_p],
        },
        CATEGORIES,
    )
    if not (args.score or args.score5):
        print(f"\n(a CV fold: {cv_seconds:.2f} s; --score to score validation_cls4.tsv once)")
        return 0

    assert REGISTERED is not None and exp4 == REGISTERED, (exp4, REGISTERED)
    name, path, thresholds = "exp. 4", VALIDATION4, exp4
    if args.score5:
        name, path, thresholds = "exp. 5", VALIDATION5, experiment5(REGISTERED)
        show_thresholds("experiment 5: experiment 4's, origin off", thresholds)
    started = time.perf_counter()
    model = Classifier(CATEGORIES).fit(dev_lemmas, texts, labels)
    train_seconds = time.perf_counter() - started
    validation = load_examples(path)
    val_rules, val_lemmas = prepare(validation)
    started = time.perf_counter()
    val_p = model.predict(val_lemmas, [e.text for e in validation])
    predict_us = (time.perf_counter() - started) / len(validation) * 1e6
    combined = [combine(r, p, *thresholds) for r, p in zip(val_rules, val_p, strict=True)]
    columns = {
        "rules alone": val_rules,
        f"rules + classifier ({name})": combined,
        "classifier alone": [frozenset(c for c, v in p.items() if v > 0.5) for p in val_p],
    }
    table(
        f"VALIDATION {path.name} (blind, scored once for {name})", validation, columns, CATEGORIES
    )
    print("\nF1 per category (rules alone -> combined):")
    for category in CATEGORIES:
        before = counts(validation, val_rules, category).f1
        after = counts(validation, combined, category).f1
        print(f"  {category:<36} {before:5.3f} -> {after:5.3f}")
    changed = sum(r != c for r, c in zip(val_rules, combined, strict=True))
    print(f"  texts whose categories the combination changed: {changed} of {len(validation)}")
    before, after = text_level(validation, val_rules), text_level(validation, combined)
    lower = [
        c
        for c in CATEGORIES
        if counts(validation, combined, c).f1 < counts(validation, val_rules, c).f1 - 1e-9
    ]
    print(
        f"\nthe bar: text-level recall {after.recall - before.recall:+.3f} (>= +0.03: "
        f"{'met' if after.recall - before.recall >= 0.03 - 1e-9 else 'missed'}), precision "
        f"{after.precision - before.precision:+.3f} (fall <= 0.01: "
        f"{'met' if before.precision - after.precision <= 0.01 + 1e-9 else 'missed'}), "
        f"categories with a lower F1: {', '.join(lower) or 'none'} "
        f"({'missed' if lower else 'met'})"
    )
    load = os.getloadavg()[0]
    print(
        f"\ntraining on all {len(dev)} development texts: {train_seconds:.2f} s "
        f"(a CV fold: {cv_seconds:.2f} s); classifier {predict_us:.0f} µs per text "
        f"(batch of {len(validation)}); load {load:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
