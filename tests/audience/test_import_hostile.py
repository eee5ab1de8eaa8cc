"""Hostile and broken CSV files: each gets a clear answer, loses no good row, and never puts one
row's data into another's."""

from __future__ import annotations

import codecs
import logging
import zipfile

import pytest

from tidings.audience.imports import ImportFailed, create_import, run_import
from tidings.audience.imports.source import MAX_LINE_BYTES
from tidings.audience.models import Contact, Import, MailingList

from .import_helpers import CONSENT, do_import, report_rows, write


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


@pytest.fixture
def news(db):
    return MailingList.objects.create(name="News", topic="product news")


def names() -> dict[str, str]:
    return dict(Contact.objects.values_list("email", "name"))


# --- quotes -------------------------------------------------------------------------------------
def test_an_unterminated_quote_is_a_bad_row_and_does_not_put_the_next_rows_into_its_name(
    tmp_path, news
):
    text = (
        "Email,Name,Company\n"
        'ann@example.com,"Ann Smith,Acme\n'  # 2: the quote is never closed
        "bob@example.com,Bob Jones,Initech\n"  # 3: read into Ann's name by a lenient reader
        'carol@example.com,"Carol",Globex\n'  # 4: the next quote shows the mistake
        "dave@example.com,Dave,Hooli\n"  # 5
    )
    imp = do_import(write(tmp_path, text), news)
    assert names() == {"dave@example.com": "Dave"}
    assert (imp.rows_read, imp.bad_rows, imp.created) == (2, 1, 1)
    rows = report_rows(imp)
    assert rows[1][0] == "2-4"
    assert rows[1][1].startswith("a quote opened on line 2 is not closed where its cell ends")
    assert imp.bad_reasons == {"unterminated quote": {"count": 1, "first_line": 2}}


def test_an_unterminated_quote_whose_cell_ends_cleanly_is_still_caught(tmp_path, news):
    text = (
        "Email,Name,Company\n"
        'ann@example.com,"Ann Smith,Acme\n'  # 2: never closed ...
        'bob@example.com,Bob Jones,Initech"\n'  # 3: ... until a quote that happens to end a cell
        "carol@example.com,Carol,Globex\n"  # 4
    )
    imp = do_import(write(tmp_path, text), news)
    assert names() == {"carol@example.com": "Carol"}
    assert report_rows(imp)[1][:2] == [
        "2-3",
        "a quote opened on line 2 is not closed where the cell ends: lines 2 to 3 were read as "
        "one row; close the quote and import the report again",
    ]


def test_an_unterminated_quote_at_the_end_of_the_file_is_a_bad_row(tmp_path, news):
    text = 'Email,Name\nann@example.com,Ann\nbob@example.com,"Bob\ncarol@example.com,Carol\n'
    imp = do_import(write(tmp_path, text), news)
    assert names() == {"ann@example.com": "Ann"}
    assert (imp.rows_read, imp.created, imp.bad_rows) == (2, 1, 1)
    assert report_rows(imp)[1][0] == "3-4"
    assert "never closed" in report_rows(imp)[1][1]


def test_an_unterminated_quote_swallowing_more_than_a_cell_holds_is_reported_and_the_rest_read(
    tmp_path, news
):
    swallowed = "".join(f"p{i}@example.com,Person {i}\n" for i in range(8_000))  # ~180 KB
    text = f'Email,Name\nann@example.com,"Ann\n{swallowed}zed@example.com,Zed\n'
    imp = do_import(write(tmp_path, text), news)
    rows = report_rows(imp)[1:]
    assert rows[0][1].startswith("a cell longer than 131,072 characters (lines 2 to ")
    assert "perhaps a quote that is not closed" in rows[0][1]
    stored = names()
    assert "ann@example.com" not in stored
    assert stored["zed@example.com"] == "Zed"
    # The rows after the error are read as rows again: each with its own name.
    assert all(
        name == f"Person {email[1:].split('@')[0]}"
        for email, name in stored.items()
        if email != "zed@example.com"
    )
    assert imp.rows_read == imp.created + imp.bad_rows


def test_a_quote_in_the_middle_of_a_cell_is_a_bad_row(tmp_path, news):
    text = 'Email,Name\nann@example.com,"Ann" Smith\nbob@example.com,Bob\n'
    imp = do_import(write(tmp_path, text), news)
    assert names() == {"bob@example.com": "Bob"}
    assert report_rows(imp)[1][:2] == [
        "2",
        "a quote in the middle of a cell (line 2): quote the whole cell, and double the quotes "
        "inside it",
    ]


def test_a_quoted_cell_over_several_lines_is_not_taken_for_an_unterminated_quote(tmp_path, news):
    text = (
        "Email,Name,Job Title\n"
        'ann@example.com,Ann,"Head of sales,\nnorth; and west\n(see bob@example.com)"\n'
        "bob@example.com,Bob,Clerk\n"
    )
    imp = do_import(write(tmp_path, text), news)
    assert (imp.created, imp.bad_rows) == (2, 0)
    job = Contact.objects.get(email="ann@example.com").job_title
    # Read as one cell; a job title is one line, so its breaks are stored as spaces.
    assert job == "Head of sales, north; and west (see bob@example.com)"


# --- sizes --------------------------------------------------------------------------------------
def test_a_line_too_long_to_read_is_a_bad_row_and_the_rest_is_imported(tmp_path, news):
    path = tmp_path / "long.csv"
    with path.open("wb") as fp:
        fp.write(b"Email,Name\nann@example.com,Ann\nbob@example.com,")
        fp.write(b"B" * (MAX_LINE_BYTES + (3 << 20)))
        fp.write(b"\ncarol@example.com,Carol\n")
    imp = do_import(path, news)
    assert names() == {"ann@example.com": "Ann", "carol@example.com": "Carol"}
    assert imp.bad_reasons == {"line too long": {"count": 1, "first_line": 3}}


# --- encodings ----------------------------------------------------------------------------------
def test_a_file_mixing_utf8_and_windows_1252_is_decoded_line_by_line_and_says_so(tmp_path, news):
    data = (
        b"Email,Name\n"
        + "zoe@example.com,Zoë Brontë\n".encode()  # UTF-8
        + "rene@example.fr,René Müller – CEO\n".encode("cp1252")  # Windows-1252
        + "jose@example.es,José Ñúñez\n".encode()  # UTF-8 again
    )
    path = tmp_path / "mixed.csv"
    path.write_bytes(data)
    imp = do_import(path, news)
    assert names() == {
        "zoe@example.com": "Zoë Brontë",
        "rene@example.fr": "René Müller – CEO",
        "jose@example.es": "José Ñúñez",
    }
    assert imp.encoding == "utf-8+cp1252"
    assert imp.notes == [
        "1 line (the first is line 3) was not UTF-8 and was read as Windows-1252: check its "
        "accented letters."
    ]


def test_windows_1252_lines_after_the_first_megabyte_are_read_right(tmp_path, news):
    rows = "".join(f"p{i}@example.com,Zoë {i}\n" for i in range(40_000))  # > 1 MB of UTF-8
    data = ("Email,Name\n" + rows).encode() + "rene@example.fr,René\r\n".encode("cp1252")
    path = tmp_path / "late.csv"
    path.write_bytes(data)
    imp = do_import(path, news)
    assert imp.created == 40_001
    assert Contact.objects.get(email="rene@example.fr").name == "René"
    assert Contact.objects.get(email="p39999@example.com").name == "Zoë 39999"
    assert imp.encoding == "utf-8+cp1252"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_files_are_read_as_utf16(tmp_path, news, encoding):
    text = "Email\tName\r\nzoe@example.com\tZoë Brontë\r\nhan@example.cn\t韩梅梅\r\n"
    imp = do_import(write(tmp_path, text, encoding=encoding), news)
    assert names() == {"zoe@example.com": "Zoë Brontë", "han@example.cn": "韩梅梅"}
    assert imp.encoding.startswith("utf-16")
    assert imp.delimiter == "\t"


def test_a_large_utf16_file_is_read_across_its_blocks(tmp_path, news):
    rows = "".join(f"p{i}@example.com,Zoë {i}\r\n" for i in range(30_000))  # > 1 MB in UTF-16
    imp = do_import(write(tmp_path, "Email,Name\r\n" + rows, encoding="utf-16"), news)
    assert (imp.created, imp.bad_rows) == (30_000, 0)
    assert Contact.objects.get(email="p29999@example.com").name == "Zoë 29999"


def test_bytes_that_are_not_utf16_in_a_utf16_file_make_their_row_bad(tmp_path, news):
    good = "Email,Name\r\nann@example.com,Ann\r\n".encode("utf-16-le")
    broken = "bob@example.com,B".encode("utf-16-le") + b"\x00\xdc" + ",\r\n".encode("utf-16-le")
    path = tmp_path / "u16.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + good[0:] + broken)
    imp = do_import(path, news)
    assert names() == {"ann@example.com": "Ann"}
    assert imp.bad_reasons == {"undecodable text": {"count": 1, "first_line": 3}}


def test_a_utf32_file_is_refused_as_such(tmp_path, news):
    with pytest.raises(ImportFailed, match=r"^a UTF-32 text file"):
        do_import(write(tmp_path, "Email,Name\nann@example.com,Ann\n", encoding="utf-32"), news)


# --- not CSV at all -----------------------------------------------------------------------------
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00"
    b"\x00IEND\xaeB`\x82"
)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (PNG, "not a CSV file: it is a PNG image"),
        (b"", "not a CSV file: the file is empty"),
        (b"\xef\xbb\xbf\r\n \n", "not a CSV file: the file is empty"),
        (b"PK\x03\x04\x14\x00\x06\x00", "not a CSV file: it is a ZIP archive"),
        (b"%PDF-1.7\n%\xe2\xe3", "not a CSV file: it is a PDF document"),
        (bytes(range(256)) * 40, "not a CSV file: it holds binary data, not text"),
    ],
    ids=["png", "empty", "blank", "xlsx", "pdf", "binary"],
)
def test_a_file_that_is_not_csv_is_refused_as_not_a_csv_file(tmp_path, news, content, message):
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFailed, match=f"^{message}"):
        do_import(path, news)
    imp = Import.objects.get()
    assert imp.status == Import.Status.FAILED
    assert imp.error.startswith(message)
    assert Contact.objects.count() == 0


def test_mailchimps_export_zip_is_refused_with_how_to_import_it(tmp_path, news):
    """A Mailchimp user uploads the audience export as it downloads, a ZIP of CSV files; it was
    refused as a workbook to "save as CSV", which sends them to a spreadsheet for nothing."""
    path = tmp_path / "members_export_1a2b3c.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "subscribed_members_export_1a2b3c.csv", "Email Address\r\na@example.com\r\n"
        )
        archive.writestr("cleaned_members_export_1a2b3c.csv", "Email Address\r\n")
    with pytest.raises(ImportFailed) as caught:
        do_import(path, news)
    assert str(caught.value) == (
        "not a CSV file: it is a ZIP archive of CSV files, as Mailchimp's audience export is: "
        "unpack it and import each CSV file in it (subscribed, unsubscribed, cleaned; its "
        "non-subscribed contacts never opted in and are not imported)"
    )
    workbook = tmp_path / "contacts.xlsx"
    with zipfile.ZipFile(workbook, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
    with pytest.raises(ImportFailed, match="save the sheet as CSV"):
        do_import(workbook, news)


# --- two imports at once --------------------------------------------------------------------------
def test_two_imports_at_once_keep_their_own_decoding_state(tmp_path, news, caplog):
    """While import A runs, import B reads a file with undecodable bytes and lines that are not
    UTF-8.  A's row holding a real U+FFFD character (valid UTF-8) is imported, and A reports no
    line that was not UTF-8: nothing of B's decoding reaches A."""
    other = MailingList.objects.create(name="Other", topic="events and webinars")
    b_path = tmp_path / "b.csv"
    b_path.write_bytes(
        codecs.BOM_UTF16_LE
        + "Email,Name\r\nx@example.com,X".encode("utf-16-le")
        + b"\x00\xdc"
        + "\r\n".encode("utf-16-le")
    )
    c_path = tmp_path / "c.csv"
    c_path.write_bytes(b"Email,Name\nr@example.fr,Ren\xe9\n")  # Windows-1252
    during: list[Import] = []

    def run_others(imp):
        if not during:
            for path in (b_path, c_path):
                during.append(do_import(path, other, batch_rows=1))

    a_text = "Email,Name\nann@example.com,Ann\nodd@example.com,Odd \ufffd Name\n"
    imp = create_import(mailing_list=news, consent_source=CONSENT, original_filename="a.csv")
    from tidings.audience.imports import ImportConfig

    imp = run_import(
        imp,
        write(tmp_path, a_text, "a.csv"),
        config=ImportConfig(batch_rows=1),
        progress=run_others,
    )
    assert [d.bad_reasons for d in during] == [
        {"undecodable text": {"count": 1, "first_line": 2}},
        {},
    ]
    assert during[1].encoding == "cp1252"
    assert (imp.created, imp.bad_rows, imp.notes, imp.encoding) == (2, 0, [], "utf-8")
    assert Contact.objects.get(email="odd@example.com").name == "Odd \ufffd Name"


def test_no_value_from_a_hostile_file_reaches_the_log(tmp_path, news, caplog):
    caplog.set_level(logging.DEBUG)
    text = (
        'Email,Name\nsecret1@example.com,"Secret One\nsecret2@example.com,Secret Two,"x"\n'
        'secret3@example.com,"Secret" Three\n'
    )
    do_import(write(tmp_path, text), news)
    assert "ecret" not in caplog.text


def test_a_header_row_that_cannot_be_read_says_so_not_no_email_column(tmp_path, news):
    """A header cell over the csv module's limit (or a quote that never closes in it) leaves no
    header at all; the import must say the header is the problem, not that a column is missing."""
    path = tmp_path / "upload.csv"
    path.write_text("Email,Notes" + "x" * 200_000 + "\nann@example.com,Ann\n")
    with pytest.raises(ImportFailed, match=r"^the header row \(line 1\) cannot be read: a cell"):
        do_import(path, news)
    imp = Import.objects.get()
    assert imp.status == Import.Status.FAILED and imp.error.startswith("the header row (line 1)")
