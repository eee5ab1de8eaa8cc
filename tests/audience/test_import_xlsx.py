"""Excel workbooks (.xlsx): the first sheet is imported as its CSV would be; an old .xls, an
.ods, a password-protected, damaged or inflating workbook is refused in one line with what to do.
The workbooks are written here with openpyxl: no binary file is kept in the repository."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from tidings.audience.imports import ImportFailed, not_a_csv_file
from tidings.audience.models import ConsentEvent, Contact, Import, MailingList

from .import_helpers import do_import, report_rows


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.TIME_ZONE = "Europe/London"


@pytest.fixture
def news(db):
    return MailingList.objects.create(name="News", topic="product news")


def workbook(tmp_path: Path, rows: list[list], name: str = "contacts.xlsx", more_sheets=0) -> Path:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for n in range(more_sheets):
        book.create_sheet(f"Other {n}").append(["Email"])
    path = tmp_path / name
    book.save(path)
    return path


HEADER = ["Email", "Name", "Phone", "Opt-in date"]
# A cell's date and time has no time zone: the sheet's are the site's.
SHEET_TIME = datetime(2023, 3, 14, 9, 12, 31)  # noqa: DTZ001
XLS = "an old Excel workbook (.xls) cannot be imported"


def test_a_workbooks_first_sheet_imports_with_its_consent_times_kept(tmp_path, news):
    path = workbook(
        tmp_path,
        [
            [],  # a blank row above the header: the header is the first row with something in it
            HEADER,
            ["ann@example.com", "Ann Smith", 447700900123, SHEET_TIME],
            ["bob@example.org", "Bob Jones", None, date(2022, 11, 2)],
            ["not-an-address", "Bad Row", None, None],
            [],
            ["carol@example.net", "Carol White", "01244 000000", None],
        ],
        more_sheets=1,
    )
    imp = do_import(path, news)
    assert (imp.rows_read, imp.created, imp.subscribed, imp.bad_rows) == (4, 3, 3, 1)
    assert imp.rows_read == imp.created + imp.bad_rows
    assert (imp.encoding, imp.delimiter) == ("xlsx", "")
    ann = Contact.objects.get(email="ann@example.com")
    assert ann.phone == "447700900123"  # a whole number, as typed: no ".0"
    at = {e.contact.email: e.at for e in ConsentEvent.objects.select_related("contact")}
    # The cell's time, in the sheet's (the site's) time zone: 09:12:31 GMT in March.
    assert at["ann@example.com"] == datetime(2023, 3, 14, 9, 12, 31, tzinfo=UTC)
    assert at["bob@example.org"].date() == date(2022, 11, 2)
    # The bad row is reported by its row number in the sheet.
    assert [row[0] for row in report_rows(imp)[1:]] == ["5"]
    assert any("first sheet" in note and "2 sheets" in note for note in imp.notes)
    # The ledger says what the file was: not "a CSV file".
    wording = ConsentEvent.objects.first().wording.text
    assert wording.startswith("Imported from contacts.xlsx, an Excel workbook, on ")


def test_formulas_are_never_run_a_cached_value_is_read_and_none_is_blank(tmp_path, news):
    book = Workbook()
    sheet = book.active
    sheet.append(["Email", "Name", "Company", "Phone"])
    sheet.append(["ann@example.com", "Ann", '=HYPERLINK("http://evil.example/","x")', "=1+1"])
    path = tmp_path / "formulas.xlsx"
    book.save(path)  # written by openpyxl: formulas with no value cached
    imp = do_import(path, news)
    assert imp.created == 1, (imp.bad_reasons, imp.unchanged, imp.skipped_suppressed)
    ann = Contact.objects.get()
    assert (ann.name, ann.company, ann.phone) == ("Ann", "", "")


def test_cells_become_the_text_a_csv_export_holds():
    from tidings.audience.imports.workbook import cell_text

    assert cell_text(None) == ""
    assert cell_text(447700900123.0) == "447700900123"
    assert cell_text(2.5) == "2.5"
    assert cell_text(True) == "TRUE"
    assert cell_text(SHEET_TIME) == "2023-03-14T09:12:31"
    assert cell_text(date(2024, 3, 14)) == "2024-03-14"


def _ole(with_encryption: bool) -> bytes:
    """The start of an OLE2 compound file, as .xls and encrypted .xlsx files are."""
    name = "EncryptedPackage" if with_encryption else "Workbook"
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + name.encode("utf-16-le") + bytes(64)


def _ods(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")


def _damaged(path: Path, tmp_path: Path) -> None:
    good = workbook(tmp_path, [HEADER, ["ann@example.com", "Ann", "", ""]], name="good.xlsx")
    path.write_bytes(good.read_bytes()[:-200])  # its ZIP directory cut off


def _broken_sheet(path: Path, tmp_path: Path) -> None:
    good = workbook(tmp_path, [HEADER, ["ann@example.com", "Ann", "", ""]], name="good.xlsx")
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]  # XML that stops half-way
            target.writestr(info, data)


def _bomb(path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as member:
            block = bytes(1 << 20)
            for _ in range(80):  # 80 MB of zeros, some 80 kB compressed
                member.write(block)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p, t: p.write_bytes(_ole(False)), XLS),
        (lambda p, t: p.write_bytes(_ole(True)), "the workbook is protected by a password"),
        (lambda p, t: _ods(p), "an OpenDocument spreadsheet (.ods) cannot be imported"),
        (_damaged, "the workbook cannot be read"),
        (_broken_sheet, "the workbook cannot be read"),
        (lambda p, t: _bomb(p), "the workbook is refused: it inflates to far more"),
    ],
    ids=["xls", "encrypted", "ods", "damaged", "broken-sheet", "zip-bomb"],
)
def test_workbooks_that_cannot_be_read_are_refused_in_one_line_with_what_to_do(
    tmp_path, news, make, message
):
    path = tmp_path / "contacts.xlsx"
    make(path, tmp_path)
    with pytest.raises(ImportFailed, match=f"^{re.escape(message)}") as caught:
        do_import(path, news)
    assert "\n" not in str(caught.value)
    assert ("CSV" in str(caught.value)) or ("xlsx" in str(caught.value))
    assert Import.objects.get().status == Import.Status.FAILED
    assert not Contact.objects.exists()


def test_an_upload_lets_a_workbook_through_and_refuses_an_xls_or_ods_at_once(tmp_path):
    path = workbook(tmp_path, [HEADER])
    assert not_a_csv_file(path.read_bytes()[: 64 * 1024]) is None
    assert "(.xls)" in (not_a_csv_file(_ole(False)) or "")
    _ods(tmp_path / "a.ods")
    assert ".ods" in (not_a_csv_file((tmp_path / "a.ods").read_bytes()) or "")
    # A Word document is an Office ZIP too: refused at upload, not taken and failed later.
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    assert "a Word document" in (not_a_csv_file(docx.getvalue()) or "")


def test_the_command_imports_a_workbook_and_refuses_an_xls_in_one_line(
    transactional_db, tmp_path, capsys
):
    from tidings.cli import main

    MailingList.objects.create(name="News", topic="product news")
    path = workbook(tmp_path, [HEADER, ["ann@example.com", "Ann", None, None]])
    command = ["import", "contacts", str(path), "--list", "News", "--consent-source", "a fair"]
    assert main([*command, "-v0"]) == 0
    out = capsys.readouterr().out
    assert "1 created" in out and "an Excel workbook's first sheet" in out
    old = tmp_path / "old.xls"
    old.write_bytes(_ole(False))
    assert main(["import", "contacts", str(old), "--list", "News", "-v0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "an old Excel workbook (.xls) cannot be imported" in err[0]
