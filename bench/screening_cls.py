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
F1 lower); it was then not put into the product: its vetoes let plain disclosures through in the
product's hand-written screening tests and its additions flagged texts about no one.

Experiment 6: keep every plain disclosure.  A rule finding is *strong* when presidio scored it
``STRONG_SCORE`` (0.85, or 1.0 with a context word near) and *weak* when it was a 0.35 finding
that a context word lifted to 0.70, i.e. ``RecognizerResult.score < STRONG_SCORE``; a same-sex
couple (``screening_couples``) is strong (``_STRENGTH``).  A category's rule findings are vetoed
when P < t_low only if every finding of that category in the text is weak; a category the rules
missed is added when P > t_high (``combine6``).  The thresholds are chosen by experiment 4's
procedure (same classifier, out-of-fold probabilities, blind rounds 13-59 as the rules before
each round scored them, ``T_LOW2``/``T_HIGH2``, ``MIN_GAIN``), racial or ethnic origin off as in
experiment 5, and only among settings that pass the gate: ``GATE``, the texts of the product's
hand-written screening tests with what those tests expect (``--choose`` prints the choice and
the gate under the rules alone, experiment 5 and experiment 6).  ``--score6`` asserts the choice
is ``REGISTERED6`` (committed with ``validation_cls6.tsv`` before that batch was run) and that the
gate passes, then scores that batch once.  It was scored once on 7 December 2026: the gate
passed, precision rose (0.825 -> 0.830) and no category's F1 fell, but text-level recall rose by
3 of 101 texts (0.792 -> 0.822, +0.0297), one text short of the +0.03 fixed before the run; so it
missed the bar.  Figures in the corpus README, "Experiment 6".

Experiment 7: experiment 6's configuration, unchanged (``REGISTERED6``, the gate, the same
classifier and training data), judged again on a seventh blind batch, ``validation_cls7.tsv``
(``vi…``, in registers unlike all earlier batches), written and committed before it was run.
``--score7`` asserts that ``REGISTERED6`` holds exactly the values ``REGISTERED7`` (written into
that commit), that the procedure still chooses them and that the gate passes, then scores the
batch once.  The bar is experiment 6's, unchanged.  It was scored once on 7 December 2026: the
gate passed and precision held (0.848 -> 0.850), but text-level recall rose by 1 of 105 texts
(0.905 -> 0.914, +0.0095) and trade union membership's F1 fell (0.818 -> 0.762, one weak finding
vetoed wrongly), so it missed the bar on two conditions.  Figures in the corpus README,
"Experiment 7".
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
VALIDATION6 = DATA / "validation_cls6.tsv"
VALIDATION7 = DATA / "validation_cls7.tsv"
# {commit: {id: {category: strong?}}} (experiment 6 added the strength; the old cache held lists)
CACHE = Path(tempfile.gettempdir()) / "tidings-screening-cls-rounds6.json"
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
# Which of a text's rule findings are strong: exec'd in this process and in each historical
# round's subprocess (the rules of a past commit), so both read strength the same way.  Presidio
# gives every finding a score: a strong pattern or term 0.85 (1.0 with a context word near), a
# weak one 0.35, kept only when a context word lifts it to 0.70 (the threshold is 0.6).  So a
# finding is weak exactly when its RecognizerResult.score < STRONG_SCORE (0.85); a same-sex couple
# (screening_couples, not presidio) is strong.  A category is "weak only" in a text when every one
# of its findings there is weak (findings of one category at one span merge: strong if any is).
_STRENGTH = """
def strength_finder(screener, module):
    engine = screener._get_engine()
    scores, couples, merged = {}, set(), []
    analyze, find_couples, merge = engine.analyzer.analyze, engine.couples.find, module._merge

    def recording_analyze(*args, **kwargs):
        results = analyze(*args, **kwargs)
        for r in results:
            key = (r.entity_type, r.start, r.end)
            scores[key] = max(scores.get(key, 0.0), r.score)
        return results

    def recording_couples(text):
        spans = find_couples(text)
        couples.update((s, e) for s, e in spans)
        return spans

    def recording_merge(findings):
        merged.extend(findings)
        return merge(findings)

    engine.analyzer.analyze = recording_analyze
    engine.couples.find = recording_couples
    module._merge = recording_merge

    def find(text, categories):
        scores.clear()
        couples.clear()
        merged.clear()
        final = {f.category for f in screener.find(text, categories)}
        strong = {
            f.category
            for f in merged
            if (f.category == module.COUPLES and (f.start, f.end) in couples)
            or scores.get((f.category, f.start, f.end), 0.0) >= module.STRONG_SCORE
        }
        # a category found without any recorded finding (never seen) counts as strong
        return {c: c in strong or not any(f.category == c for f in merged) for c in final}

    return find
"""
_SCORE_OLD = (
    _STRENGTH
    + """
import json, sys
from tidings.policy.screening import CATEGORIES, Screener
import tidings.policy.screening as module
assert module.__file__.startswith(sys.argv[1])
find = strength_finder(Screener(), module)
rows = json.load(sys.stdin)
json.dump({i: find(t, CATEGORIES) for i, t in rows}, sys.stdout)
"""
)


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


def historical_rules(commits: Sequence[str]) -> dict[str, dict[str, bool]]:
    """Each blind round's texts as the rules of the commit before that round found them.

    Per text the categories found, each with whether any of its findings is strong (see
    ``_STRENGTH``).  Cached per commit in ``CACHE`` (a commit's parent never changes, so neither
    does the answer).
    """
    import subprocess

    root = DATA.parents[2]
    cache: dict[str, dict[str, dict[str, bool]]] = (
        json.loads(CACHE.read_text()) if CACHE.exists() else {}
    )
    found: dict[str, dict[str, bool]] = {}

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
        found.update(cache[commit])
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


# --- Experiment 6 -------------------------------------------------------------------------------
# The gate: the texts of the product's hand-written screening tests (tests/policy/
# test_screening.py, test_screening_forms.py, test_screening_language.py) with what those tests
# expect of the categories found.  (text, categories, op): "==" the categories found are exactly
# these, ">=" they include these, "not" none of these is found.  All nine categories screened.
GATE: tuple[tuple[str, tuple[str, ...], str], ...] = (
    # test_screening_language.py, parametrised tests (extracted from their marks)
    ("My husband and I share the account.", ("sex_life_or_orientation",), "not"),
    ("Hi, I'm Emma; my husband Tom asked me to get in touch.", ("sex_life_or_orientation",), "not"),
    ("I'm Sarah's husband, writing on her behalf.", ("sex_life_or_orientation",), "not"),
    ("My wife Lucy and I (I'm Rob) want to join.", ("sex_life_or_orientation",), "not"),
    ("Sam and his wife Rachel will attend.", ("sex_life_or_orientation",), "not"),
    ("My partner Alex will handle the invoices.", ("sex_life_or_orientation",), "not"),
    ("My business partner Dave and I run the shop; I'm Tom.", ("sex_life_or_orientation",), "not"),
    ("Tom and Sarah are married.", ("sex_life_or_orientation",), "not"),
    ("The nursery pickup uses a face scan for parents and I'm one of them.", ("biometric",), "=="),
    (
        "My kid's school uses iris scanners for the library and I never signed anything.",
        ("biometric",),
        "==",
    ),
    ("The gym uses a fingerprint reader at the door, mine included.", ("biometric",), "=="),
    (
        "Do you keep the face scans the venue took? I was one of the attendees.",
        ("biometric",),
        "==",
    ),
    ("My gym uses a vein scanner on my hand to let me in.", ("biometric",), "=="),
    ("The nursery pickup uses a face scan for parents.", (), "=="),
    ("My kid's school uses iris scanners for the library.", (), "=="),
    ("The fingerprint reader at reception is broken again, so everyone uses cards.", (), "=="),
    ("Do you keep the face scans the venue took?", (), "=="),
    (
        "My surname is Vietnamese and your form strips the accents.",
        ("racial_or_ethnic_origin",),
        "==",
    ),
    ("My last name's Korean so it goes first.", ("racial_or_ethnic_origin",), "=="),
    ("Her name is Ada White and she is Black.", ("racial_or_ethnic_origin",), "=="),
    ("My surname is Smith, not Smyth: please correct it.", (), "=="),
    ("My family name is misspelt on your records.", (), "=="),
    ("Please spell my name Ada Black, with a capital B.", (), "=="),
    ("my surname is Black, please fix it", (), "=="),
    ("Last name: Brown. Address: 3 Mill Lane.", (), "=="),
    ("My maiden name was White and my name should read Ada Green now.", (), "=="),
    ("Is my son's asthma a problem for the warehouse tour?", ("health",), ">="),
    ("Can you avoid Fridays? I'm Muslim.", ("religious_or_philosophical_beliefs",), ">="),
    ("Can the signup form ask about disability so we can offer reasonable adjustments?", (), "=="),
    ("What happens if a subscriber writes their religion in the comments box?", (), "=="),
    (
        "Does your form builder let us ask attendees about dietary needs like halal or kosher?",
        (),
        "==",
    ),
    ("My boyfriend Dave is the other director; I'm Tom.", ("sex_life_or_orientation",), "=="),
    ("Me and my wife have two boys; I'm Sarah and she's Jo.", ("sex_life_or_orientation",), "=="),
    (
        "Contact's husband, Mark, is the co-founder; the contact is Steve.",
        ("sex_life_or_orientation",),
        "==",
    ),
    ("Has a wife named Sarah; contact is Emma.", ("sex_life_or_orientation",), "=="),
    ("Mark's husband Ahmed will join the call.", ("sex_life_or_orientation",), "=="),
    ("Met his partner Steve at the conference.", ("sex_life_or_orientation",), "=="),
    ("Kevin is married to Brian, so send the invite to both.", ("sex_life_or_orientation",), "=="),
    (
        "My ex-boyfriend, James, still gets my invoices. I'm David.",
        ("sex_life_or_orientation",),
        "==",
    ),
    (
        "I'm engaged to Priya. I'm Anjali, from the Leicester branch.",
        ("sex_life_or_orientation",),
        "==",
    ),
    ("At the depot you clock in with your thumb now.", ("biometric",), "=="),
    ("The turnstile camera looked at my face and let me through.", ("biometric",), "=="),
    ("The office reader maps the veins in my palm.", ("biometric",), "=="),
    ("Border staff took all of my fingers and a photo.", ("biometric",), "=="),
    ("The attendance terminal measures the shape of my hand.", ("biometric",), "=="),
    ("The bank's phone line checks it's really me speaking.", ("biometric",), "=="),
    ("My car recognises me by my face and moves the seat.", ("biometric",), "=="),
    ("Been on statins and blood thinners since the spring.", ("health",), ">="),
    ("I came out last year and my team has been great.", ("sex_life_or_orientation",), ">="),
    ("His husband runs the shop with him.", ("sex_life_or_orientation",), ">="),
    (
        "My grandparents are from Punjab; I grew up in Leicester.",
        ("racial_or_ethnic_origin",),
        ">=",
    ),
    ("Converted to Buddhism a few years back.", ("religious_or_philosophical_beliefs",), ">="),
    ("I've got nine penalty points, so I take the train now.", ("criminal_history",), ">="),
    ("The new clocking system scanned my thumb without asking me.", ("biometric",), ">="),
    ("my mum is having the sugar and pressure both, doctor changed tablets", ("health",), ">="),
    ("Off me face on gabapentin after the nerve thing flared up", ("health",), ">="),
    ("She's away to the Royal Infirmary for her bloods and a scan on the lump", ("health",), ">="),
    (
        "Sir please avoid call on tuesday i am keeping fast for Hanuman ji",
        ("religious_or_philosophical_beliefs",),
        ">=",
    ),
    (
        "Not been to confession since school, but I'd still tick RC",
        ("religious_or_philosophical_beliefs",),
        ">=",
    ),
    ("I'm half Bajan on my dad's side", ("racial_or_ethnic_origin",), ">="),
    (
        "at my new warehouse job they put the finger in the machine every shift",
        ("biometric",),
        ">=",
    ),
    (
        "Landlord's put a fingerprint lock on the front door and says we all have to register",
        ("biometric",),
        ">=",
    ),
    (
        "Been going to the Buddhist centre in Sheffield on Wednesdays for meditation",
        ("religious_or_philosophical_beliefs",),
        ">=",
    ),
    (
        "Handed out Lib Dem leaflets in the rain all Saturday, never again",
        ("political_opinions",),
        ">=",
    ),
    ("The defendant was convicted of fraud.", ("criminal_history",), "=="),
    ("He convicts nobody; he was convicted himself in 2010.", ("criminal_history",), "=="),
    ("Both brothers have convictions for theft.", ("criminal_history",), "=="),
    ("It was a baptism of fire, my first week running the newsletter alone.", (), "=="),
    ("Is it kosher to email people who bought from us two years ago?", (), "=="),
    ("I have faith in your team, just fix the import please.", (), "=="),
    ("I work for the Church of England as a finance officer.", (), "=="),
    ("I'm allergic to pop-ups on websites.", (), "=="),
    ("I'm sick and tired of chasing invoices.", (), "=="),
    ("My boss's vision for the brand is calm luxury.", (), "=="),
    ("I need some retail therapy after this migration.", (), "=="),
    ("This handbook is our bible for onboarding.", (), "=="),
    ("The caterer serves halal and kosher platters for weddings.", (), "=="),
    ("Can we fingerprint the export files before sending them?", (), "=="),
    ("My nerves can't take another migration like that.", (), "=="),
    ("The Vicar of Dibley DVD is back in stock.", (), "=="),
    ("Please check in with your hand luggage at desk 4.", (), "=="),
    ("Medical needs: epipen in bag (nuts), inhaler before PE", ("health",), ">="),
    ("Has an EHCP for autism, 1:1 TA in the mornings", ("health",), ">="),
    (
        "Went flying down the stairs at Christmas, still in a boot, so no school run",
        ("health",),
        ">=",
    ),
    ("cant make 5 a side tonite lads, the knee needs rest after the op", ("health",), ">="),
    (
        "Had to swap my late shift because Jummah clashes with my lunch break",
        ("religious_or_philosophical_beliefs",),
        ">=",
    ),
    ("I'm back at the pain clinic on Tuesday.", ("health",), "=="),
    ("She walks with a stick since the fall.", ("health",), "=="),
    ("Hearing aids in both ears, so email is best.", ("health",), "=="),
    ("He's on light duties until March.", ("health",), "=="),
    ("We'd like to start again after a break, since my chemo finished in May.", ("health",), ">="),
    ("After my conviction was spent I started a removals business.", ("criminal_history",), ">="),
    ("I'm a member of Unite.", ("trade_union_membership",), ">="),
    (
        "My husband and I run a B&B together — we're both blokes.",
        ("sex_life_or_orientation",),
        ">=",
    ),
    (
        "Our imam suggested we use your tool, and I volunteer at the mosque.",
        ("religious_or_philosophical_beliefs",),
        ">=",
    ),
    ("My DNA results came back and I've found a half-brother.", ("genetic",), ">="),
    ("Please delete the face scan your app took when I verified my age.", ("biometric",), ">="),
    ("My parents came over from Jamaica in the sixties.", ("racial_or_ethnic_origin",), ">="),
    ("I've been canvassing for the Greens all weekend.", ("political_opinions",), ">="),
    (
        "Dear Mrs Okafor, your appointment at the Fracture Clinic has moved to Thursday.",
        ("health",),
        ">=",
    ),
    (
        "I confirm that Mr Hughes attended the Memory Assessment Service on 2 May.",
        ("health",),
        ">=",
    ),
    ("PIP tribunal finally came through, enhanced rate for daily living", ("health",), ">="),
    ("sorry for slow reply im in hosp with my little one, shes on a drip", ("health",), ">="),
    (
        "my daughters school make the kids use there finger for the library books",
        ("biometric",),
        ">=",
    ),
    ("At airport they take my all ten fingers, is normal for UK visa?", ("biometric",), ">="),
    ("Induction: wouldn't give prints for the time clock, on PIN instead", ("biometric",), ">="),
    (
        "sorry cant come to the stag, im not drinking since i took shahada",
        ("religious_or_philosophical_beliefs",),
        ">=",
    ),
    ("We never ask about religion, ethnicity or sexual orientation on our sign-up form.", (), "=="),
    ("The report covers age, gender and disability across the sector.", (), "=="),
    ("My dog is diabetic and the vet bills are something else.", (), "=="),
    ("Volunteers who are unwell should stay at home that day.", (), "=="),
    ("We watched a documentary about prisons at the staff away-day.", (), "=="),
    ("The buses are on strike so the courier is late.", (), "=="),
    ("That near-miss on the send button nearly gave me a heart attack.", (), "=="),
    (
        "We are a Sikh gurdwara committee and want to email our volunteers about the langar rota.",
        (),
        "==",
    ),
    ("i have diabetis so i need the meeting before lunch pls", ("health",), ">="),
    ("my husbnd is having chemotherpy so we close the shop", ("health",), ">="),
    ("i got epilepsey so no flashing things pls", ("health",), ">="),
    ("im on antidepressents and forget things", ("health",), ">="),
    (
        "We write on behalf of our client, who has a conviction for theft.",
        ("criminal_history",),
        "==",
    ),
    (
        "Our client, who is a practising Catholic, asks for Sundays off.",
        ("religious_or_philosophical_beliefs",),
        "==",
    ),
    ("Our dog's on Metacam for his hips now, vet reckons it's arthritis", (), "=="),
    ("Started couch to 5k, knees are screaming but I'm loving it", (), "=="),
    ("honestly that Greggs steak bake is my religion now", (), "=="),
    ("Meeting in the Unison Room at the Town Hall, 2pm", (), "=="),
    ("Fingerprint sign-in on the Monzo app greyed out after I changed phone", (), "=="),
    ("Lost my face in the photo, the ring light blew it out completely", (), "=="),
    ("RCN guidance on uniforms has changed, can someone send it to the ward WhatsApp", (), "=="),
    (
        "Can we switch off the fingerprint scanner prompt for staff logging into the POS tablets?",
        (),
        "==",
    ),
    ("We're opening a second shop in Golders Green next month", (), "=="),
    ("Blue Badge renewal reminder sent to all residents on the permit list", (), "=="),
    ("Has anyone else had the ASD field vanish from the form?", (), "=="),
    ("Diwali clashes with our launch week, can we move it?", (), "=="),
    ("that new bbq place is criminal, 9 quid for a bap", (), "=="),
    ("This role is exempt under the Rehabilitation of Offenders Act.", (), "=="),
    (
        "You may be accompanied at the hearing by a colleague or a trade union representative.",
        (),
        "==",
    ),
    (
        "face ID on the app isn't working since the update, it keeps asking for my passcode",
        (),
        "==",
    ),
    ("I'm allergic to penicillin, so no to the free sample.", ("health",), ">="),
    ("I have faith in God and it gets me through.", ("religious_or_philosophical_beliefs",), ">="),
    ("My daughter's confirmation is on Sunday.", ("religious_or_philosophical_beliefs",), ">="),
    ("cant do calls this week, got pnuemonia", ("health",), ">="),
    ("We sponsor the cancer research charity's fun run every year.", (), "=="),
    ("We sell health insurance to small firms.", (), "=="),
    ("Our office is on Union Street, next to the bank.", (), "=="),
    ("We do party planning: kids' birthdays and hen dos.", (), "=="),
    ("I'm a criminal lawyer and send a monthly case-law digest.", (), "=="),
    ("I keep forgetting my PIN for your login.", (), "=="),
    ("We support people with dementia and their carers.", (), "=="),
    ("Our scheduler uses a genetic algorithm to pick send times.", (), "=="),
    ("We're a credit union with 8,000 members.", (), "=="),
    ("My husband and I run a B&B and would like to email past guests.", (), "=="),
    ("Anything before 5 is fine; I'll send the invoice dated Monday.", (), "=="),
    ("I'm off to Mass... just kidding, I'm off to the gym.", (), "=="),
    ("We're a Muslim matrimonial website? No — we're a general dating site, sorry.", (), "=="),
    # test_screening_language.py, the other tests
    ("Cancer is the theme of the charity's spring appeal.", (), "=="),
    ("My cancer came back last spring.", ("health",), "=="),
    ("I'm not religious at all, never have been.", ("religious_or_philosophical_beliefs",), "=="),
    (
        "Please renew the plan.\nMy boyfriend Dave pays.\nI'm Tom.",
        ("sex_life_or_orientation",),
        ">=",
    ),
    ("Paula met her wife through the running club.", ("sex_life_or_orientation",), "=="),
    ("We're both lads from Leeds, me and my husband.", ("sex_life_or_orientation",), "=="),
    ("I came straight from the airport.", (), "=="),
    ("Our Kosher Kitchen cookbook launches in March.", (), "=="),
    (
        "Rabbi Cohen's office called about the invoice.",
        ("religious_or_philosophical_beliefs",),
        "==",
    ),
    (
        "Signed up via the Extinction Rebellion stall; arrested? no. Just a supporter.",
        ("political_opinions",),
        "==",
    ),
    (
        "Client is a Hindu priest who runs wedding ceremonies.",
        ("religious_or_philosophical_beliefs",),
        "==",
    ),
    ("We cater for a client mosque in Leeds.", (), "=="),
    ("Our clients who are Muslim like the Eid range.", (), "=="),
    ("Selling a Ring doorbell with facial recognition switched off, barely used", (), "=="),
    (
        "My genetic counsellor has advised me to tell my siblings the result.",
        ("genetic",),
        "==",
    ),
    # test_screening.py: EXAMPLES in their two frames, HARD_NEGATIVES, the other tests
    *(
        (f"Thanks for the quote. {sentence} Please invoice us in May.", (category,), "==")
        for category, sentence in (
            ("health", "I'm off work with depression at the moment."),
            (
                "religious_or_philosophical_beliefs",
                "As a practising Muslim I can't attend on Friday.",
            ),
            ("political_opinions", "I vote Labour and always have."),
            ("racial_or_ethnic_origin", "As a Black British woman I rarely see myself in ads."),
            ("sex_life_or_orientation", "I'm a bisexual man."),
            ("trade_union_membership", "I'm a Unite union rep at our site."),
            ("genetic", "My BRCA1 test came back positive."),
            ("biometric", "Please delete the facial recognition template of me."),
            ("criminal_history", "I have a conviction for fraud from 2012."),
        )
    ),
    ("Hello. I'm off work with depression at the moment.", ("health",), ">="),
    (
        "Hello. As a practising Muslim I can't attend on Friday.",
        ("religious_or_philosophical_beliefs",),
        ">=",
    ),
    ("Hello. I vote Labour and always have.", ("political_opinions",), ">="),
    (
        "Hello. As a Black British woman I rarely see myself in ads.",
        ("racial_or_ethnic_origin",),
        ">=",
    ),
    ("Hello. I'm a bisexual man.", ("sex_life_or_orientation",), ">="),
    ("Hello. I'm a Unite union rep at our site.", ("trade_union_membership",), ">="),
    ("Hello. My BRCA1 test came back positive.", ("genetic",), ">="),
    ("Hello. Please delete the facial recognition template of me.", ("biometric",), ">="),
    ("Hello. I have a conviction for fraud from 2012.", ("criminal_history",), ">="),
    ("We've seen healthy growth in sign-ups this quarter.", (), "=="),
    ("The union of our two companies completes on 1 April.", (), "=="),
    ("European Union regulations require a lawful basis for every email.", (), "=="),
    ("The party starts at 6 in the main hall.", (), "=="),
    ("Our health-check endpoint returns 503 when the queue is backed up.", (), "=="),
    ("I have a strong conviction that this approach will work.", (), "=="),
    ("Labour costs went up 8% this year.", (), "=="),
    ("There's a race condition in the scheduler.", (), "=="),
    ("He threw himself into the project with gay abandon.", (), "=="),
    ("I disabled the webhook because it kept timing out.", (), "=="),
    ("We diagnosed the bounce issue as a misconfigured SPF record.", (), "=="),
    ("Please check the SSH key fingerprint before you connect.", (), "=="),
    ("Our scheduler uses a genetic algorithm to pick send times.", (), "=="),
    ("The new hire is on a six-month probation period.", (), "=="),
    ("Christian from accounts will send the purchase order.", (), "=="),
    ("Mass mailing to the whole list is scheduled for 9 am.", (), "=="),
    ("The Black Friday sale email goes out on the 28th.", (), "=="),
    ("We were charged twice for the March invoice.", (), "=="),
    (
        "I have a conviction for fraud. As a practising Muslim I pray on Fridays.",
        ("religious_or_philosophical_beliefs", "criminal_history"),
        "==",
    ),
    ("Please renew our support contract for another year.", (), "=="),
    (
        "Hi, we'd like a demo next week. I saw Dr. Patel about my depression, so please email "
        "rather than call. Thanks, Sam",
        ("health",),
        "==",
    ),
    (
        "Notes:\n- prefers email\n- diabetic, lunch at 12\n- invoice to finance\n"
        "As a practising Muslim I can't attend on Friday; could we do Thursday?",
        ("health", "religious_or_philosophical_beliefs"),
        "==",
    ),
    (
        "I'm a gay Unite union rep.",
        ("trade_union_membership", "sex_life_or_orientation"),
        "==",
    ),
    ("Renewal is due. My BRCA1 test came back positive.", ("genetic",), "=="),
    ("I\u2019m gay and my husband handles billing.", ("sex_life_or_orientation",), "=="),
    ("I'm a Unite union rep.", ("trade_union_membership",), "=="),
    ("My iris scan was taken.", ("biometric",), "=="),
    ("I have a criminal record.", ("criminal_history",), "=="),
    ("Sorry to hear about your cancer diagnosis. Your order ships tomorrow.", (), "=="),
    # test_screening_forms.py
    (
        "Hi, we'd like a demo of the newsletter tool. Since my chemo finished I only work three "
        "days a week. Could you call on a Monday?",
        ("health",),
        "==",
    ),
    ("Hi, we'd like a demo of the newsletter tool. Could you call on a Monday?", (), "=="),
    (
        "I'm a Unite shop steward at the depot.\nWe need a newsletter for the branch.\n"
        "I have a spent conviction for theft, if that matters.",
        ("trade_union_membership", "criminal_history"),
        "==",
    ),
    ("I was diagnosed with depression last year.", ("health",), ">="),
    (
        "My job title is wrong. I am registered blind, so please use large print.",
        ("health",),
        "==",
    ),
    ("My job title is wrong.", (), "=="),
)
# Gate cases screened for fewer categories, or built by the test (test_screening.py):
# (text, the policy's categories, op, expected).
GATE_SCOPED: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str], ...] = (
    (
        "As a practising Muslim I can't attend on Friday. My diabetes appointment is at 10.",
        ("health",),
        ("health",),
        "==",
    ),
    ("I have a criminal record and my diabetes appointment is at 10.", (), (), "=="),
)


def gate_cases() -> list[tuple[str, str, tuple[str, ...], frozenset[str], str]]:
    """The gate as (text the rules read, text the classifier reads, categories, expected, op)."""
    from tidings.policy.screening import CATEGORIES, CHUNK_CHARS, _as_third_person

    cases = [(t, t, CATEGORIES, frozenset(e), op) for t, e, op in GATE]
    cases += [(t, t, tuple(c), frozenset(e), op) for t, c, e, op in GATE_SCOPED]
    # test_a_very_long_text_is_screened_in_pieces_without_losing_anything
    line = "Please send the quote for the Pro plan to our finance team.\n"
    ordinary = line * (CHUNK_CHARS // len(line) + 10)
    long = ordinary + "I have a criminal record.\n" + ordinary + "My diabetes appointment is soon."
    cases.append((long, long, CATEGORIES, frozenset({"health", "criminal_history"}), "=="))
    # test_a_text_written_to_the_person_counts_their_you_and_your (addressed=True): the rules
    # read the text turned to the third person, the classifier the text as written
    for text, expected in (
        ("Sorry to hear about your cancer diagnosis. Your order ships tomorrow.", {"health"}),
        ("Your order ships tomorrow, thank you.", set()),
    ):
        cases.append((_as_third_person(text), text, CATEGORIES, frozenset(expected), "=="))
    return cases


def gate_wants(expected: frozenset[str], op: str, category: str) -> bool | None:
    """What a gate case requires of one category: found (True), not found (False) or nothing."""
    if op == "==":
        return category in expected
    if op == ">=":
        return True if category in expected else None
    return False if category in expected else None


def combine6(
    rules: dict[str, bool],
    p: dict[str, float],
    t_low: dict[str, float],
    t_high: dict[str, float],
    categories: Sequence[str] | None = None,
) -> frozenset[str]:
    """Experiment 6: a category the rules found is dropped when P < t_low only if every finding
    of it is weak (``rules[c]`` is False); one they missed is added when P > t_high."""
    return frozenset(
        c
        for c in (p if categories is None else categories)
        if (c in rules and (rules[c] or p[c] >= t_low.get(c, 0.0)))
        or (c not in rules and p[c] > t_high.get(c, 2))
    )


def gate_failures(
    cases: Sequence[tuple[str, str, tuple[str, ...], frozenset[str], str]],
    rules: Sequence[dict[str, bool]],
    probabilities: Sequence[dict[str, float]],
    decide: Any,
) -> list[str]:
    """The gate cases a configuration breaks: ``decide(rules, p, categories) -> categories``."""
    failures = []
    for (text, _, cats, expected, op), r, p in zip(cases, rules, probabilities, strict=True):
        got = decide(r, p, cats)
        ok = (
            got == expected
            if op == "=="
            else expected <= got
            if op == ">="
            else not (expected & got)
        )
        if not ok:
            short = " ".join(text.split())[:90]
            failures.append(f"{short!r}: expected {op} {sorted(expected)}, got {sorted(got)}")
    return failures


def choose6(
    examples: Sequence[Example],
    rules: Sequence[dict[str, bool]],
    probabilities: Sequence[dict[str, float]],
    lows: Sequence[float],
    highs: Sequence[float],
    gate: tuple[Sequence[Any], Sequence[dict[str, bool]], Sequence[dict[str, float]]],
    off: Sequence[str] = (),
) -> tuple[Thresholds, dict[str, int]]:
    """Experiment 4's choice with the weak-only veto, and only among settings that pass the gate:
    per category the (t_low, t_high) with the best F1 on the blind-round texts, switched on only
    if it gains at least MIN_GAIN; categories in ``off`` stay the rules'.  Also returns how many
    grid settings the gate excluded per category."""
    from tidings.policy.screening import CATEGORIES

    cases, gate_rules, gate_p = gate
    t_low: dict[str, float] = {}
    t_high: dict[str, float] = {}
    excluded: dict[str, int] = {}
    for category in CATEGORIES:
        wants = [
            (gate_wants(expected, op, category), category in cats)
            for _, _, cats, expected, op in cases
        ]

        def passes(low: float, high: float, category: str = category, wants: Any = wants) -> bool:
            for (want, screened), r, p in zip(wants, gate_rules, gate_p, strict=True):
                if want is None or not screened:
                    continue
                got = category in combine6(r, p, {category: low}, {category: high}, (category,))
                if got != want:
                    return False
            return True

        assert passes(0.0, 1.01), f"the rules alone fail the gate in {category}"
        excluded[category] = 0
        if category in off:
            continue
        best = (counts(examples, [frozenset(r) for r in rules], category).f1 + MIN_GAIN, 0.0, 1.01)
        for low in lows:
            for high in highs:
                if not passes(low, high):
                    excluded[category] += 1
                    continue
                found = [
                    combine6(r, p, {category: low}, {category: high}, (category,))
                    for r, p in zip(rules, probabilities, strict=True)
                ]
                f1 = counts(examples, found, category).f1
                if f1 > best[0] + 1e-9:
                    best = (f1, low, high)
        if best[1] > 0:
            t_low[category] = best[1]
        if best[2] <= 1:
            t_high[category] = best[2]
    return (t_low, t_high), excluded


# Experiment 6's configuration, chosen by ``--choose`` and written into the commit that added
# ``validation_cls6.tsv`` before it was ever run: (t_low, t_high) per category, a t_low vetoing
# only a category whose findings in the text are all weak.
REGISTERED6: Thresholds | None = (
    {"trade_union_membership": 0.2, "criminal_history": 0.1},
    {
        "political_opinions": 0.9,
        "religious_or_philosophical_beliefs": 0.9,
        "genetic": 0.99,
        "health": 0.9,
        "sex_life_or_orientation": 0.99,
        "criminal_history": 0.8,
    },
)
# Racial or ethnic origin stays the rules' as in experiment 5.
OFF6 = (OFF5,)
# Experiment 7 judges experiment 6's configuration again, unchanged, on a seventh blind batch:
# ``--score7`` asserts ``REGISTERED6`` still holds exactly these values (written into the commit
# that added ``validation_cls7.tsv`` before it was ever run).
REGISTERED7 = (
    {"trade_union_membership": 0.2, "criminal_history": 0.1},
    {
        "political_opinions": 0.9,
        "religious_or_philosophical_beliefs": 0.9,
        "genetic": 0.99,
        "health": 0.9,
        "sex_life_or_orientation": 0.99,
        "criminal_history": 0.8,
    },
)


def experiment6(
    score: Path | None,
    screener: Any,
    training: tuple[list[str], list[str], list[frozenset[str]]],
    blind: tuple[list[Example], list[dict[str, bool]], list[dict[str, float]]],
    exp4: Thresholds,
    cv_seconds: float,
) -> int:
    """``--choose``: experiment 6's thresholds and the gate; ``--score6`` / ``--score7``: then
    score ``score`` (``validation_cls6.tsv`` / ``validation_cls7.tsv``) once."""
    import tidings.policy.screening as module
    from tidings.policy.screening import _FOLD, CATEGORIES

    assert REGISTERED is not None and exp4 == REGISTERED, (exp4, REGISTERED)
    namespace: dict[str, Any] = {}
    exec(_STRENGTH, namespace)  # noqa: S102 (our own code, shared with the historical rounds)
    find = namespace["strength_finder"](screener, module)
    engine = screener._get_engine()

    def lemmatise(text: str) -> str:
        doc = engine.nlp_engine.process_text(text.translate(_FOLD), "en").tokens
        return " ".join(t.lemma_.lower() for t in doc if not (t.is_space or t.is_punct))

    dev_lemmas, texts, labels = training
    blind_examples, blind_strength, blind_p = blind
    started = time.perf_counter()
    model = Classifier(CATEGORIES).fit(dev_lemmas, texts, labels)
    train_seconds = time.perf_counter() - started

    cases = gate_cases()
    gate_rules = [find(rules_text, cats) for rules_text, _, cats, _, _ in cases]
    gate_p = model.predict([lemmatise(c[1]) for c in cases], [c[1] for c in cases])
    exp6, excluded = choose6(
        blind_examples,
        blind_strength,
        blind_p,
        T_LOW2,
        T_HIGH2,
        (cases, gate_rules, gate_p),
        off=OFF6,
    )
    show_thresholds(
        f"experiment 6: weak-only vetoes, the gate, origin off; on the {len(blind_examples)} "
        "blind-round texts of rounds 13-59",
        exp6,
    )
    print(f"  as a literal: {exp6!r}")
    print(f"  grid settings the gate excluded (of {len(T_LOW2) * len(T_HIGH2)}): {excluded}")
    weak = sum(not strong for r in blind_strength for strong in r.values())
    print(
        f"  blind-round categories found by weak findings only: {weak} of "
        f"{sum(len(r) for r in blind_strength)}"
    )
    exp5 = experiment5(REGISTERED)
    deciders = {
        "rules alone": lambda r, p, c: frozenset(r) & frozenset(c),
        "exp. 5": lambda r, p, c: combine(frozenset(r), p, *exp5) & frozenset(c),
        "exp. 6": lambda r, p, c: combine6(r, p, *exp6, c),
    }
    failures = {}
    for name, decide in deciders.items():
        failures[name] = gate_failures(cases, gate_rules, gate_p, decide)
        print(f"\nthe gate ({len(cases)} cases) under {name}: {len(failures[name])} broken")
        for failure in failures[name]:
            print(f"  {failure}")
    table(
        "blind rounds 13-59 (rules as before each round; classifier out-of-fold)",
        blind_examples,
        {
            "rules before the round": [frozenset(r) for r in blind_strength],
            "rules + classifier (exp. 6)": [
                combine6(r, p, *exp6) for r, p in zip(blind_strength, blind_p, strict=True)
            ],
            "rules + classifier (exp. 5)": [
                combine(frozenset(r), p, *exp5)
                for r, p in zip(blind_strength, blind_p, strict=True)
            ],
        },
        CATEGORIES,
    )
    if score is None:
        print(f"\n(a CV fold: {cv_seconds:.2f} s; --score6 to score validation_cls6.tsv once)")
        return 0

    assert REGISTERED6 is not None and exp6 == REGISTERED6, (exp6, REGISTERED6)
    if score == VALIDATION7:
        assert REGISTERED6 == REGISTERED7, (REGISTERED6, REGISTERED7)
        assert list(map(list, REGISTERED6)) == list(map(list, REGISTERED7))  # same order too
    assert not failures["exp. 6"], "the registered configuration fails the gate"
    print(f"\nthe gate ({len(cases)} cases) under the registered configuration: passed")
    name = "exp. 7" if score == VALIDATION7 else "exp. 6"
    validation = load_examples(score)
    val_strength = [find(e.text, CATEGORIES) for e in validation]
    val_rules = [frozenset(r) for r in val_strength]
    val_lemmas = [lemmatise(e.text) for e in validation]
    started = time.perf_counter()
    val_p = model.predict(val_lemmas, [e.text for e in validation])
    predict_us = (time.perf_counter() - started) / len(validation) * 1e6
    combined = [combine6(r, p, *exp6) for r, p in zip(val_strength, val_p, strict=True)]
    columns = {
        "rules alone": val_rules,
        "rules + classifier (exp. 6)": combined,
        "classifier alone": [frozenset(c for c, v in p.items() if v > 0.5) for p in val_p],
    }
    table(
        f"VALIDATION {score.name} (blind, scored once for {name}: exp. 6's configuration)",
        validation,
        columns,
        CATEGORIES,
    )
    print("\nF1 per category (rules alone -> combined):")
    for category in CATEGORIES:
        before = counts(validation, val_rules, category).f1
        after = counts(validation, combined, category).f1
        print(f"  {category:<36} {before:5.3f} -> {after:5.3f}")
    print("\ntexts whose categories the combination changed (id: rules -> combined; labels):")
    for example, r, s, c in zip(validation, val_rules, val_strength, combined, strict=True):
        if r != c:
            weak = sorted(k for k, strong in s.items() if not strong)
            print(
                f"  {example.id}: {sorted(r)} -> {sorted(c)}; labelled {sorted(example.categories)}"
                f"{f'; weak only: {weak}' if weak else ''}"
            )
    weak = sum(not strong for r in val_strength for strong in r.values())
    print(f"  categories found by weak findings only: {weak} of {sum(map(len, val_strength))}")
    before, after = text_level(validation, val_rules), text_level(validation, combined)
    lower = [
        c
        for c in CATEGORIES
        if counts(validation, combined, c).f1 < counts(validation, val_rules, c).f1 - 1e-9
    ]
    print(
        f"\nthe bar: text-level recall {after.recall - before.recall:+.4f} "
        f"({before.tp} -> {after.tp} of {before.tp + before.fn} found; >= +0.03: "
        f"{'met' if after.recall - before.recall >= 0.03 - 1e-9 else 'missed'}), precision "
        f"{after.precision - before.precision:+.3f} (fall <= 0.01: "
        f"{'met' if before.precision - after.precision <= 0.01 + 1e-9 else 'missed'}), "
        f"categories with a lower F1: {', '.join(lower) or 'none'} "
        f"({'missed' if lower else 'met'}), the gate: passed ({len(cases)} cases)"
    )
    load = os.getloadavg()[0]
    print(
        f"\ntraining on all {len(texts)} development texts: {train_seconds:.2f} s "
        f"(a CV fold: {cv_seconds:.2f} s); classifier {predict_us:.0f} µs per text "
        f"(batch of {len(validation)}); load {load:.2f}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    import numpy

    from tidings.policy.screening import _FOLD, CATEGORIES, Screener

    parser = argparse.ArgumentParser(prog="python -m bench.screening_cls")
    parser.add_argument("--score", action="store_true", help="score validation_cls4.tsv once")
    parser.add_argument(
        "--score5", action="store_true", help="experiment 5: score validation_cls5.tsv once"
    )
    parser.add_argument(
        "--choose", action="store_true", help="experiment 6: choose the thresholds, run the gate"
    )
    parser.add_argument(
        "--score6", action="store_true", help="experiment 6: score validation_cls6.tsv once"
    )
    parser.add_argument(
        "--score7",
        action="store_true",
        help="experiment 7: exp. 6's configuration, score validation_cls7.tsv once",
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
    blind_strength = [old_rules[dev[i].id] for i in blind]
    blind_rules = [frozenset(r) for r in blind_strength]
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
    if args.choose or args.score6 or args.score7:
        return experiment6(
            VALIDATION7 if args.score7 else VALIDATION6 if args.score6 else None,
            screener,
            (dev_lemmas, texts, labels),
            (blind_examples, blind_strength, blind_p),
            exp4,
            cv_seconds,
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
