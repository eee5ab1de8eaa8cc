"""The Art. 30 record of processing activities: ``tidings policy ropa`` and its CSV."""

from __future__ import annotations

import csv
import io

import pytest

from tidings.cli import main
from tidings.policy import load_policy
from tidings.policy.commands import EXAMPLE_POLICY
from tidings.policy.records import RECORD_KINDS
from tidings.policy.ropa import COLUMNS, safe_cell, write_ropa_csv

EXAMPLE_TEXT = EXAMPLE_POLICY.read_text(encoding="utf-8")


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected exactly one {old!r} in the example policy"
    return text.replace(old, new)


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def ropa_of(policy) -> tuple[list[str], list[dict[str, str]]]:
    out = io.StringIO(newline="")
    write_ropa_csv(policy, out)
    return read_csv(out.getvalue())


@pytest.fixture
def example():
    return load_policy(EXAMPLE_POLICY)


def by_purpose(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["purpose id"]: row for row in rows}


def test_the_record_has_a_header_and_one_row_per_purpose(example):
    header, rows = ropa_of(example)

    assert header == list(COLUMNS)
    assert [row["purpose id"] for row in rows] == list(example.purposes)


def test_the_columns_cover_what_article_30_asks_for():
    for column in (
        "controller",
        "controller contact",
        "purpose",
        "lawful basis",
        "data subjects",
        "categories of personal data",
        "recipients",
        "international transfers",
        "retention",
    ):
        assert column in COLUMNS


def test_every_row_names_the_controller_and_how_to_contact_it(example):
    _, rows = ropa_of(example)

    for row in rows:
        assert row["controller"] == "Example Software Ltd"
        assert "Chester, CH4 0AA" in row["controller contact"]
        assert "privacy@example.co.uk" in row["controller contact"]
        assert "01244 000 000" in row["controller contact"]
        assert row["data protection officer"] == ""


def test_each_row_describes_its_purpose_from_the_policy(example):
    _, rows = ropa_of(example)
    enquiry = by_purpose(rows)["enquiry"]

    assert enquiry["purpose"] == "Answering your enquiries"
    assert enquiry["lawful basis"] == "Legitimate interests (Art. 6(1)(f))"
    assert enquiry["data subjects"] == "people who contact us with an enquiry"
    assert enquiry["categories of personal data"] == "identity; contact; employment"
    assert enquiry["personal data required"] == "name; email"
    assert enquiry["personal data optional"] == "phone; company; job title; work address"
    assert enquiry["sources"].startswith("web form; email; telephone")
    assert enquiry["recipients"] == (
        "Third-party database hosting provider — hosts CRM records — United States"
    )
    assert enquiry["international transfers"] == (
        "Third-party database hosting provider (United States): standard contractual clauses"
    )
    assert enquiry["retention"] == (
        "12 months after our last contact with you. You may ask us to keep them for longer."
    )
    assert enquiry["legal minimum"] == "no"


def test_purposes_without_transfers_or_processors_say_none(example):
    rows = by_purpose(ropa_of(example)[1])

    assert rows["newsletter"]["international transfers"] == "none"
    assert rows["newsletter"]["recipients"].endswith("— United Kingdom")
    assert rows["analytics"]["recipients"] == "none"
    assert rows["analytics"]["personal data required"] == ""


def test_a_legal_minimum_is_marked(example):
    rows = by_purpose(ropa_of(example)[1])

    assert rows["order"]["legal minimum"] == "yes"
    assert rows["order"]["retention"].startswith("6 years after the order was placed.")
    assert "legal minimum" in rows["order"]["retention"]


def test_every_purpose_lists_all_its_processors(example):
    rows = by_purpose(ropa_of(example)[1])

    support = rows["contract_support"]
    assert support["recipients"].count("United States") == 2
    assert "Helpdesk software — support request logging — United States" in support["recipients"]


def test_every_record_kind_says_who_its_records_are_about():
    for kind in RECORD_KINDS.values():
        assert kind.data_subjects, kind.key


# --- the command ----------------------------------------------------------------------------


def test_the_command_prints_the_record_as_csv(capsys):
    assert main(["policy", "ropa", str(EXAMPLE_POLICY)]) == 0

    out, err = capsys.readouterr()
    header, rows = read_csv(out)
    assert header == list(COLUMNS)
    assert len(rows) == 5
    assert err == ""


def test_the_command_writes_the_record_to_a_file_with_o(tmp_path, capsys):
    target = tmp_path / "ropa.csv"

    assert main(["policy", "ropa", str(EXAMPLE_POLICY), "-o", str(target)]) == 0

    out, _ = capsys.readouterr()
    assert out == ""
    raw = target.read_bytes()
    assert raw.count(b"\r\n") == 6  # RFC 4180 line ends, not doubled into \r\r\n
    header, rows = read_csv(raw.decode("utf-8"))
    assert header == list(COLUMNS)
    assert [row["purpose id"] for row in rows] == [
        "enquiry",
        "newsletter",
        "order",
        "contract_support",
        "analytics",
    ]


def test_the_command_reads_tidings_policy_when_no_file_is_given(tmp_path, monkeypatch, capsys):
    policy = tmp_path / "policy.toml"
    policy.write_text(
        replace_once(EXAMPLE_TEXT, 'name = "Example Software Ltd"', 'name = "Otherco Widgets plc"'),
        encoding="utf-8",
    )
    monkeypatch.setenv("TIDINGS_POLICY", str(policy))

    assert main(["policy", "ropa"]) == 0

    _, rows = read_csv(capsys.readouterr().out)
    assert {row["controller"] for row in rows} == {"Otherco Widgets plc"}


def test_a_broken_policy_file_exits_1_with_one_line_per_problem(tmp_path, capsys):
    broken = tmp_path / "broken.toml"
    text = replace_once(EXAMPLE_TEXT, 'lawful_basis = "legitimate_interests"', 'lawful_basis = "x"')
    text = replace_once(text, 'location = "UK"', 'location = "ZZ"')
    broken.write_text(text, encoding="utf-8")
    target = tmp_path / "ropa.csv"

    assert main(["policy", "ropa", str(broken), "-o", str(target)]) == 1

    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == ""
    assert len(lines) == 2
    assert any(f"{broken}: purposes.enquiry.lawful_basis:" in line for line in lines)
    assert any(f"{broken}: processors.mail_host.location:" in line for line in lines)
    assert not target.exists()


def test_a_missing_policy_file_exits_1(tmp_path, capsys):
    missing = tmp_path / "nowhere.toml"

    assert main(["policy", "ropa", str(missing)]) == 1

    assert capsys.readouterr().err == f"{missing}: file not found\n"


# --- spreadsheet formula injection ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+44 1244 000 000", "'+44 1244 000 000"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("Example Software Ltd", "Example Software Ltd"),
        ("a = b", "a = b"),
        ("", ""),
        (None, ""),
    ],
)
def test_safe_cell_neutralises_what_a_spreadsheet_would_run(value, cell):
    assert safe_cell(value) == cell


def test_formulas_in_the_policy_come_out_as_text_in_the_csv(tmp_path):
    text = replace_once(
        EXAMPLE_TEXT, 'name = "Example Software Ltd"', "name = \"=cmd|' /C calc'!A0\""
    )
    text = replace_once(
        text,
        'name = "Third-party database hosting provider"',
        "name = \"@SUM(1+1)*cmd|' /C calc'!A0\"",
    )
    text = replace_once(
        text, 'title = "Answering your enquiries"', "title = \"-2+3+cmd|' /C calc'!A0\""
    )
    text = replace_once(text, 'sources = ["web form",', 'sources = ["+1 web form",')
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(text, encoding="utf-8")

    _, rows = ropa_of(load_policy(policy_file))

    enquiry = by_purpose(rows)["enquiry"]
    assert enquiry["controller"] == "'=cmd|' /C calc'!A0"
    assert enquiry["purpose"] == "'-2+3+cmd|' /C calc'!A0"
    assert enquiry["recipients"].startswith("'@SUM(1+1)")
    assert enquiry["sources"].startswith("'+1 web form")
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_a_file_that_cannot_be_written_is_one_line_and_exit_1(tmp_path, capsys):
    # -o into a folder that does not exist ended in a FileNotFoundError traceback.
    target = tmp_path / "no such folder" / "ropa.csv"
    assert main(["policy", "ropa", str(EXAMPLE_POLICY), "-o", str(target)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"tidings policy ropa: cannot write {target}: No such file or directory"
