"""Build the screening corpus's development and held-out parts from the authored batches.

    .venv/bin/python tests/data/screening/make_split.py           # write dev.tsv, heldout.tsv
    .venv/bin/python tests/data/screening/make_split.py --check   # exit 1 if they differ

The batches in ``corpus/`` are the source: one text a line, ``codes<TAB>register<TAB>text``,
``#`` lines are comments.  Each text gets a stable id (``b07-031``: batch 7, 31st text) and its
categories spelt out as the policy names them.  The split was made once, with the fixed seed
below, stratified by label set (every combination of categories, and "none", is halved on its
own), and committed; ``--check`` (run by the tests) proves the committed parts are exactly that
split of the committed corpus, so neither can drift without the other.

Do not add to the corpus after the split: a new text changes the shuffle of its stratum, so
texts would change sides and the held-out part would no longer be held out.  New examples go
into a separate file that the benchmark reports on its own.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
DEV = HERE / "dev.tsv"
HELDOUT = HERE / "heldout.tsv"
SEED = 20261206
HEADER = "id\tcategories\tregister\ttext\n"

CODES = {
    "race": "racial_or_ethnic_origin",
    "sex": "sex_life_or_orientation",
    "relig": "religious_or_philosophical_beliefs",
    "pol": "political_opinions",
    "union": "trade_union_membership",
    "gen": "genetic",
    "bio": "biometric",
    "health": "health",
    "crime": "criminal_history",
}
REGISTERS = {"enquiry", "support", "booking", "note", "chat", "formal", "misspelt"}


def read_corpus(directory: Path = CORPUS) -> list[tuple[str, tuple[str, ...], str, str]]:
    """Every text: (id, categories, register, text), in batch and line order."""
    rows = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("b*.tsv")):
        batch = path.name.split("_", 1)[0]
        number = 0
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            where = f"{path.name}:{line_no}"
            parts = line.split("\t")
            if len(parts) != 3:
                raise ValueError(f"{where}: expected codes, register, text separated by tabs")
            codes, register, text = parts
            if register not in REGISTERS:
                raise ValueError(f"{where}: unknown register {register!r}")
            if codes == "-":
                categories: tuple[str, ...] = ()
            else:
                try:
                    categories = tuple(sorted(CODES[c] for c in codes.split(",")))
                except KeyError as exc:
                    raise ValueError(f"{where}: unknown category code {exc}") from None
            if text in seen:
                raise ValueError(f"{where}: the same text is already in {seen[text]}")
            seen[text] = where
            number += 1
            rows.append((f"{batch}-{number:03d}", categories, register, text))
    return rows


def split(rows):
    """(dev, heldout): each label set halved at random with the fixed seed."""
    rng = random.Random(SEED)
    strata = defaultdict(list)
    for row in rows:
        strata[row[1]].append(row)
    dev, heldout = [], []
    extra_to_heldout = False
    for key in sorted(strata):
        members = sorted(strata[key])
        rng.shuffle(members)
        half = len(members) // 2
        if len(members) % 2:
            half += extra_to_heldout
            extra_to_heldout = not extra_to_heldout
        heldout += members[:half]
        dev += members[half:]
    return sorted(dev), sorted(heldout)


def render(rows) -> str:
    lines = [HEADER]
    lines += [f"{i}\t{','.join(c)}\t{register}\t{text}\n" for i, c, register, text in rows]
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, don't write")
    args = parser.parse_args(argv)
    dev, heldout = split(read_corpus())
    wanted = {DEV: render(dev), HELDOUT: render(heldout)}
    if args.check:
        stale = [p.name for p, text in wanted.items() if not p.exists() or p.read_text() != text]
        if stale:
            sys.stderr.write(f"not the seeded split of the corpus: {', '.join(stale)}\n")
            return 1
        sys.stdout.write(f"split ok: {len(dev)} development, {len(heldout)} held out\n")
        return 0
    for path, text in wanted.items():
        path.write_text(text, encoding="utf-8")
    sys.stdout.write(f"wrote {len(dev)} development and {len(heldout)} held-out texts\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
