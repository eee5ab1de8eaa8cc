"""Fuzzing the importer with hypothesis: whatever the file, no crash, every row accounted for, and
no data from one row in another.

Each generated row carries a token of its own (``r0007x@example.com`` and ``N0007`` in its name),
so a value that travelled from one row into another is seen for what it is.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.hypothesis_profiles import examples
from tidings.audience.imports import ImportFailed, create_import, run_import
from tidings.audience.models import Contact, MailingList
from tidings.lib.text import one_line

from .import_helpers import report_rows

FUZZ = settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TOKEN = re.compile(r"N(\d{4})|r(\d{4})x[@.]example\.com", re.IGNORECASE)
COUNTED = ("created", "updated", "unchanged", "skipped_suppressed", "skipped_unsubscribed")


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


@pytest.fixture
def news(db):
    return MailingList.objects.create(name="News", topic="product news")


# Text a cell may hold: letters of many scripts, the delimiters, quotes, line breaks, tabs,
# spaces, and Unicode's other line separators (which are not line ends to a CSV reader).  No
# "@" (a cell holding an address beside a delimiter on a line of its own is what the reader
# takes for an unterminated quote) and no control characters (a file full of them is binary).
CELL = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(',;\t"\r\n |\\\u2028\x85\x0c€ßéø漢字')),
        st.characters(categories=["L", "N", "P", "Zs"], exclude_characters="@'"),
    ),
    max_size=25,
)

ROW = st.fixed_dictionaries(
    {
        "valid": st.booleans() | st.just(True),
        "case": st.sampled_from(["lower", "upper", "mixed"]),
        "name": CELL,
        "company": CELL,
        "long": st.integers(0, 12),  # 0: a name over 200 characters (a bad row)
        "duplicate_of": st.none() | st.integers(0, 30),
    }
)


def email_of(index: int, case: str, valid: bool) -> str:
    address = f"r{index:04d}x@example.com" if valid else f"r{index:04d}x.example.com"
    return {"lower": address, "upper": address.upper(), "mixed": address.capitalize()}[case]


def line_of(email: str, name: str, company: str, delimiter: str) -> str:
    one = io.StringIO(newline="")
    csv.writer(one, delimiter=delimiter, lineterminator="\n").writerow([email, name, company])
    return one.getvalue()


def count_lines(data: bytes) -> int:
    """Physical lines as a CSV reader counts them (\r, \n and \r\n end a line)."""
    return len(list(io.StringIO(data.decode("utf-8", "replace"), newline="")))


def broken_across_lines(value: str, delimiter: str) -> bool:
    """The contract for one-line fields (name, company...): a line break followed by a
    delimiter reads as an unterminated quote, and the row is bad."""
    return any(at >= 0 and delimiter in value[at:] for at in (value.find("\n"), value.find("\r")))


def build(rows: list[dict], delimiter: str, quoting: int, terminator: str):
    """The file's text, and per row: (email as written, name, company, start line)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator=terminator)
    writer.writerow(["Email", "Name", "Company"])
    line = 2
    built = []
    for index, row in enumerate(rows):
        source = index if row["duplicate_of"] is None else min(row["duplicate_of"], index)
        email = email_of(source, row["case"], row["valid"])
        name = f"N{index:04d} {row['name']}" + ("x" * 200 if row["long"] == 0 else "")
        one = io.StringIO(newline="")
        csv.writer(one, delimiter=delimiter, quoting=quoting, lineterminator=terminator).writerow(
            [email, name, row["company"]]
        )
        text = one.getvalue()
        out.write(text)
        lines = len(list(io.StringIO(text, newline="")))
        built.append((email, name, row["company"], line, delimiter, lines))
        line += lines
    return out.getvalue(), built


def expected_outcome(built):
    """What a correct import stores: {email key: (name, company)} and the lines of bad rows."""
    stored: dict[str, tuple[str, str]] = {}
    bad_lines: set[int] = set()
    for email, name, company, line, delimiter, lines in built:
        # A name or company is one line: a break or tab in it is stored as a space.
        one_line_name, one_line_company = one_line(name.strip()), one_line(company.strip())
        if (
            "@" not in email
            or not name.strip()
            or len(one_line_name) > 200
            or broken_across_lines(name, delimiter)
            or broken_across_lines(company, delimiter)
        ):
            bad_lines.update(range(line, line + lines))  # a bad row names the lines it covers
            continue
        key = email.casefold()
        if key in stored:
            bad_lines.add(line)  # a duplicate: reported, the first row wins
            continue
        stored[key] = (one_line_name, one_line_company)
    return stored, bad_lines


def reported_lines(imp) -> set[int]:
    lines: set[int] = set()
    if not imp.report_file:
        return lines
    for row in report_rows(imp)[1:]:
        first, _, last = row[0].partition("-")
        lines.update(range(int(first), int(last or first) + 1))
    return lines


def assert_counts_add_up(imp) -> None:
    accounted = sum(getattr(imp, name) for name in COUNTED) + imp.duplicates + imp.bad_rows
    assert accounted == imp.rows_read


def assert_no_row_holds_another_rows_data(built) -> None:
    """Each contact's values carry only the tokens of rows with its address (a row and its
    duplicates are the same person's)."""
    rows_of: dict[int, set[int]] = {}
    for index, (email, *_rest) in enumerate(built):
        rows_of.setdefault(int(TOKEN.search(email).group(2)), set()).add(index)
    for email, name, company in Contact.objects.values_list("email", "name", "company"):
        numbers = {int(m.group(1) or m.group(2)) for m in TOKEN.finditer(name + " " + company)}
        address = TOKEN.search(email)
        if address is None:  # a damaged address: its values are still one row's
            assert len(numbers) <= 1, "values from several rows"
            continue
        own = int(address.group(2))
        assert numbers <= {own} | rows_of[own], "a value from another row"


def import_rolled_back(path, news, check):
    """Import the file, run ``check(imp)``, and roll the database back for the next example."""
    with transaction.atomic():
        imp = create_import(mailing_list=news, consent_source="fuzz", original_filename="f.csv")
        try:
            imp = run_import(imp, path)
        except ImportFailed as exc:
            check(None, str(exc))
        else:
            check(imp, "")
        transaction.set_rollback(True)


@FUZZ
@given(
    rows=st.lists(ROW, min_size=1, max_size=30),
    delimiter=st.sampled_from([",", ";", "\t"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    terminator=st.sampled_from(["\r\n", "\n"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_any_well_formed_file_imports_every_good_row_exactly_and_reports_every_bad_one(
    tmp_path, news, rows, delimiter, quoting, terminator, encoding
):
    text, built = build(rows, delimiter, quoting, terminator)
    path = tmp_path / "fuzz.csv"
    path.write_bytes(text.encode(encoding))
    stored, bad_lines = expected_outcome(built)

    def check(imp, error):
        assert not error, error
        assert imp.rows_read == len(built)
        assert_counts_add_up(imp)
        got = {
            email.casefold(): (name, company)
            for email, name, company in Contact.objects.values_list("email", "name", "company")
        }
        assert got == stored
        assert reported_lines(imp) == bad_lines
        assert_no_row_holds_another_rows_data(built)

    import_rolled_back(path, news, check)


MUTATIONS = st.sampled_from(["quote", "quote-at-end", "byte", "truncate", "line-break"])


@FUZZ
@given(
    rows=st.lists(ROW, min_size=2, max_size=30),
    delimiter=st.sampled_from([",", ";"]),
    mutation=MUTATIONS,
    where=st.floats(0, 1),
    byte=st.integers(0x80, 0xFF),
)
def test_a_damaged_file_never_crashes_accounts_for_every_row_and_mixes_no_rows(
    tmp_path, news, rows, delimiter, mutation, where, byte
):
    text, built = build(rows, delimiter, csv.QUOTE_MINIMAL, "\n")
    data = text.encode()
    header_end = data.index(b"\n") + 1
    position = header_end + int(where * (len(data) - header_end - 1))
    if mutation == "quote":
        data = data[:position] + b'"' + data[position:]
    elif mutation == "quote-at-end":
        data = data[:position] + b'"' + data[position:].replace(b'"', b"")
    elif mutation == "byte":
        data = data[:position] + bytes([byte]) + data[position:]
    elif mutation == "truncate":
        data = data[:position]
    else:
        data = data[:position] + b"\r" + data[position:]
    path = tmp_path / "damaged.csv"
    path.write_bytes(data)
    note(f"file: {data!r}")
    # Where each row starts in the original file (bytes), and which row the damage is in.
    starts, offset = [], header_end
    for email, name, company, *_ in built:
        starts.append(offset)
        offset += len(line_of(email, name, company, delimiter).encode())
    damaged = max(i for i, start in enumerate(starts) if start <= position)
    original = text.encode()

    def start_line(index: int) -> int:
        """The line a row after the damaged one starts on in the damaged file: its bytes moved
        by the one inserted, less the quotes "quote-at-end" took out before it (a quote taken
        out of a later row, "\r" -> one line, changes that row's length, not its start)."""
        offset = starts[index] + 1
        if mutation == "quote-at-end":
            offset -= original[position : starts[index]].count(b'"')
        return count_lines(data[:offset]) + 1

    def check(imp, error):
        assert not error, error  # the header is intact: the file stays usable
        assert_counts_add_up(imp)
        assert_no_row_holds_another_rows_data(built)
        stored, _ = expected_outcome(built[:damaged])
        got = {
            email.casefold(): (name, company)
            for email, name, company in Contact.objects.values_list("email", "name", "company")
        }
        for key, values in stored.items():  # rows before the damage are imported exactly
            assert got[key] == values
        # Every other row in the file is imported, or reported by the line it starts on or
        # inside the span of lines of a bad row that swallowed it.
        reported = reported_lines(imp)
        stored_now = {
            match.group(2)
            for e in Contact.objects.values_list("email", flat=True)
            if (match := TOKEN.search(e))
        }
        for index, (email, _name, _company, line, _, _) in enumerate(built):
            if index == damaged or (mutation == "truncate" and index > damaged):
                continue  # the damaged row (counted above, whatever it became), or cut off
            start = start_line(index) if index > damaged else line
            token = TOKEN.search(email).group(2)
            assert token in stored_now or start in reported, (
                f"row at line {start} neither imported nor reported"
            )

    import_rolled_back(path, news, check)
