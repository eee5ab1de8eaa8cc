"""The labelled screening corpus: split once, committed, and the held-out part kept out of sight."""

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from bench.screening import (
    DEV,
    DEV_EXTRA,
    HELDOUT,
    VALIDATION,
    VALIDATION_REAL,
    evaluate,
    load_examples,
    main,
)

from tidings.policy.screening import CATEGORIES, Screener

SPLIT = Path(DEV).parent / "make_split.py"


def test_the_committed_parts_are_the_seeded_split_of_the_committed_corpus():
    result = subprocess.run(
        [sys.executable, str(SPLIT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "split ok" in result.stdout


def test_the_corpus_is_large_varied_and_split_evenly_by_category():
    dev, heldout = load_examples(DEV), load_examples(HELDOUT)
    assert len(dev) + len(heldout) >= 2000
    assert not {e.text for e in dev} & {e.text for e in heldout}
    assert not {e.id for e in dev} & {e.id for e in heldout}
    for category in CATEGORIES:
        in_dev = sum(category in e.categories for e in dev)
        in_heldout = sum(category in e.categories for e in heldout)
        assert in_dev >= 70 and in_heldout >= 70, category
        assert abs(in_dev - in_heldout) <= 2, category
    clean = sum(not e.categories for e in dev + heldout)
    assert clean >= 600  # hard negatives and ordinary text
    registers = Counter(e.register for e in dev + heldout)
    assert set(registers) == {"enquiry", "support", "booking", "note", "chat", "formal", "misspelt"}
    assert min(registers.values()) >= 150


def test_screening_meets_the_targets_on_the_development_part():
    # The held-out figures are only reported (make bench-screening); a test over them would
    # make every failing change a tuning step against the held-out part.
    screener = Screener()
    report = evaluate(
        load_examples(DEV),
        lambda t: {f.category for f in screener.find(t, CATEGORIES)},
        CATEGORIES,
    )
    assert report.overall.recall >= 0.95
    assert report.overall.precision >= 0.95
    assert report.micro.recall >= 0.95
    assert report.micro.precision >= 0.95


def test_the_benchmark_never_prints_a_held_out_text(capsys):
    main(["--errors", "--quick"])
    out = capsys.readouterr().out
    assert "HELD-OUT part" in out and "development part's mistakes" in out
    printed = {word for line in out.splitlines() for word in line.split()}
    assert not [e.id for e in load_examples(HELDOUT) if e.id in printed]
    assert [e.id for e in load_examples(DEV) if e.id in printed]  # its mistakes are listed


REGISTERS = {"enquiry", "support", "booking", "note", "chat", "formal", "misspelt"}
# The sixth batch was written in registers the corpus lacks (see the corpus README's Format).
NEW_REGISTERS = {
    "review",
    "appreview",
    "sms",
    "voicemail",
    "minutes",
    "slack",
    "newsletter",
    "estate",
}
# The seventh batch, in registers unlike all earlier ones (see the corpus README's Format).
NEW_REGISTERS7 = {
    "callnote",
    "linkedin",
    "whatsapp",
    "recruit",
    "volunteer",
    "membership",
    "tenancy",
    "parish",
}
REGISTERS_OF = {"vh": NEW_REGISTERS, "vi": NEW_REGISTERS7}


@pytest.mark.parametrize(
    ("path", "prefix"),
    list(zip(VALIDATION, ("vc", "vd", "ve", "vf", "vg", "vh", "vi"), strict=True)),
)
def test_the_validation_batches_are_new_text_labelled_in_the_corpus_categories(path, prefix):
    validation = load_examples(path)
    seen = load_examples(DEV) + load_examples(DEV_EXTRA)
    seen += [e for other in VALIDATION if other != path for e in load_examples(other)]
    assert len(validation) >= 150
    assert len({e.id for e in validation}) == len(validation)
    assert all(e.id.startswith(prefix) for e in validation)
    assert not {e.text for e in validation} & {e.text for e in seen}
    assert all(e.categories <= set(CATEGORIES) for e in validation)
    # about half sensitive, every category present, many hard negatives
    assert 0.4 <= sum(e.label for e in validation) / len(validation) <= 0.6
    assert all(any(c in e.categories for e in validation) for c in CATEGORIES)
    assert {e.register for e in validation} == REGISTERS_OF.get(prefix, REGISTERS)


def test_the_benchmark_lists_the_validation_batches_mistakes_and_never_a_held_out_text(capsys):
    """Since rounds 60 and 61 the classifier experiments' validation batches are development text:
    ``--validation --errors`` lists their mistakes beside the development part's; the held-out
    part is still neither scored nor printed with ``--dev-only``."""
    main(["--dev-only", "--validation", "--errors", "--quick"])
    out = capsys.readouterr().out
    assert "validation batch 7 (development text since round 60)" in out
    assert "validation_real1.tsv (text by other people, round 65)" in out
    assert "HELD-OUT part" not in out
    listed = {
        line.split()[0] for line in out.splitlines() if line.startswith("  ") and " -> " in line
    }
    validation = {e.id for path in VALIDATION + VALIDATION_REAL for e in load_examples(path)}
    assert listed & validation  # the rules still miss some of them: listed, to be worked on
    development = {e.id for path in (DEV, DEV_EXTRA) for e in load_examples(path)}
    assert listed <= development | validation  # each mistake line starts with its text's id
    assert not listed & {e.id for e in load_examples(HELDOUT)}
