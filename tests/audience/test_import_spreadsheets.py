"""Files as spreadsheets and other tools save them: Excel's "sep=" line, European headers with
accents, a first name in a column headed Name beside a Last name, and dates as milliseconds
since 1970."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tidings.audience.imports.proof import parse_moment
from tidings.audience.models import ConsentEvent, Contact, MailingList

from .import_helpers import do_import, report_rows, write


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.TIME_ZONE = "Europe/London"


@pytest.fixture
def news(db):
    return MailingList.objects.create(name="News", topic="product news")


def test_excels_sep_line_names_the_delimiter_and_the_header_follows_it(tmp_path, news):
    text = "sep=;\r\nEmail;Name;Company\r\nann@example.com;Ann Smith;Acme, Ltd\r\nnot-one;Bob;\r\n"
    imp = do_import(write(tmp_path, text), news)
    assert (imp.delimiter, imp.created, imp.bad_rows) == (";", 1, 1)
    assert Contact.objects.get().company == "Acme, Ltd"
    assert [row[0] for row in report_rows(imp)[1:]] == ["4"]  # the physical line


def test_a_european_excel_file_with_accented_headers_maps_its_columns(tmp_path, news):
    text = (
        "E-Mail-Adresse;Vorname;Nachname;Firma;Telefon\r\n"
        "hans@example.de;Hans;Müller;Groß GmbH;+49 30 123456\r\n"
    )
    imp = do_import(write(tmp_path, text, encoding="cp1252"), news)
    assert (imp.created, imp.ignored_columns) == (1, {})
    hans = Contact.objects.get()
    assert (hans.name, hans.company, hans.phone) == ("Hans Müller", "Groß GmbH", "+49 30 123456")

    text = "Courriel;Prénom;Nom;Société;Téléphone\r\nzoe@example.fr;Zoé;Lefèvre;Café SA;01 23\r\n"
    imp = do_import(write(tmp_path, text, name="fr.csv", encoding="cp1252"), news)
    assert (imp.created, imp.ignored_columns) == (1, {})
    zoe = Contact.objects.get(email="zoe@example.fr")
    assert (zoe.name, zoe.company, zoe.phone) == ("Zoé Lefèvre", "Café SA", "01 23")


def test_a_name_column_beside_a_last_name_column_holds_the_first_name(tmp_path, news):
    text = "Email,Name,Last name\r\nann@example.com,Ann,Lee\r\nbob@example.org,Bob,\r\n"
    do_import(write(tmp_path, text), news)
    assert dict(Contact.objects.values_list("email", "name")) == {
        "ann@example.com": "Ann Lee",
        "bob@example.org": "Bob",
    }


def test_opt_in_times_in_milliseconds_since_1970_are_read_as_utc(tmp_path, news):
    text = (
        "Email,Name,Signed up\r\n"
        "ann@example.com,Ann,1680703402000\r\n"  # milliseconds (HubSpot's API, JavaScript)
        "bob@example.org,Bob,1680703402\r\n"  # ten digits: a number, not taken for a time
        "cy@example.net,Cy,9999999999999\r\n"  # in 2286: a date in the future
    )
    imp = do_import(write(tmp_path, text), news, column_map={"Signed up": "optin_time"})
    moment = datetime(2023, 4, 5, 14, 3, 22, tzinfo=UTC)
    assert list(ConsentEvent.objects.values_list("at", flat=True)) == [moment]
    assert (imp.created, imp.bad_rows) == (1, 2)
    assert [row[1] for row in report_rows(imp)[1:]] == [
        "Signed up is not a date of consent (a number)",
        "Signed up is not a date of consent (a date in the future)",
    ]


LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Rails' Time#to_s (Kit) and others name the zone after the time.
        ("2023-04-05 14:03:22 UTC", datetime(2023, 4, 5, 14, 3, 22, tzinfo=UTC)),
        ("2023-04-05T14:03:22 GMT", datetime(2023, 4, 5, 14, 3, 22, tzinfo=UTC)),
        ("2024-03-14 09:12:31 +0000 UTC", datetime(2024, 3, 14, 9, 12, 31, tzinfo=UTC)),
        # A spreadsheet's long or medium date formats, in English; no zone: TIME_ZONE's.
        ("Apr 5, 2023", datetime(2023, 4, 5, tzinfo=LONDON)),
        ("April 5, 2023 2:03 PM", datetime(2023, 4, 5, 14, 3, tzinfo=LONDON)),
        ("5 Apr 2023 14:03", datetime(2023, 4, 5, 14, 3, tzinfo=LONDON)),
        ("05-Apr-23", datetime(2023, 4, 5, tzinfo=LONDON)),
        ("5 September 2023 09:00:10", datetime(2023, 9, 5, 9, 0, 10, tzinfo=LONDON)),
        ("Sept. 5, 2023", datetime(2023, 9, 5, tzinfo=LONDON)),
        # RFC 2822, as mail and some APIs write.
        ("Wed, 05 Apr 2023 14:03:22 +0000", datetime(2023, 4, 5, 14, 3, 22, tzinfo=UTC)),
    ],
)
def test_dates_with_a_zone_name_or_an_english_month_are_read(text, expected):
    assert parse_moment(text, LONDON) == expected


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Apr 45, 2023", "not a real date"),
        ("Smarch 5, 2023", "text"),
        ("5 Apr 2023 25:61", "not a real date"),
        ("2023-04-05 14:03:22 CET", "text"),  # a zone we cannot place is not guessed
        ("Wed, 05 Apr", "text"),
    ],
)
def test_month_name_dates_that_are_not_dates_say_what_they_are(text, kind):
    assert parse_moment(text, LONDON) == kind


NAMES = ["Zoë Brontë", "François Pérez", "Jürgen Groß", "Åsa Öberg", "José Muñoz", "Seán O’Brien"]


@pytest.mark.parametrize(
    ("encoding", "recorded"),
    [
        ("mac_roman", "mac_roman"),  # Excel for Mac's "CSV (Macintosh)"
        ("cp1252", "cp1252"),  # Excel for Windows' "CSV"
        ("utf-16", "utf-16-le"),  # Excel's "Unicode text": UTF-16 with a BOM, tab-separated
    ],
)
def test_a_file_saved_in_a_legacy_encoding_is_read_with_its_accents(
    tmp_path, news, encoding, recorded
):
    """Mac Roman and Windows-1252 both decode any byte: a Mac Roman file read as Windows-1252
    imported "Zo‘ Bront‘" and "MŸller" without a word.  Each is read as what it is."""
    delimiter = "\t" if encoding.startswith("utf-16") else ","
    lines = [f"Email{delimiter}Name"]
    lines += [f"person{n}@example.com{delimiter}{name}" for n, name in enumerate(NAMES)]
    path = write(tmp_path, "\r\n".join(lines) + "\r\n", encoding=encoding)

    imp = do_import(path, news)

    assert (imp.created, imp.bad_rows, imp.encoding) == (len(NAMES), 0, recorded)
    assert sorted(Contact.objects.values_list("name", flat=True)) == sorted(NAMES)
    if encoding == "mac_roman":  # a guess: the operator is told to look
        assert "Read as Mac Roman" in " ".join(imp.notes)


@pytest.mark.parametrize(
    "header",
    [
        "Email,Name,Email",  # whose address is the second?
        "Email,First name,First name",
        "Email,Name,Company,company",
    ],
)
def test_a_header_naming_a_column_it_reads_twice_is_refused_in_one_line(tmp_path, news, header):
    """Which of two columns with one name holds what only the file's author knows: reading the
    first, the first non-blank or both joined put one column's data in another's place."""
    from tidings.audience.imports import ImportFailed

    text = f"{header}\r\nann@example.com,Ann,Zed,x@example.org\r\n"
    with pytest.raises(ImportFailed) as refusal:
        do_import(write(tmp_path, text), news)

    message = str(refusal.value)
    twice = header.split(",")[-1]
    assert message.startswith(f"the header names {twice!r} twice (columns ")
    assert "rename one of them" in message and "\n" not in message
    assert "ann@" not in message and not Contact.objects.exists()


def test_columns_that_are_ignored_may_share_a_name(tmp_path, news):
    text = "Email,Name,Notes,Notes\r\nann@example.com,Ann,a,b\r\n"
    imp = do_import(write(tmp_path, text), news)
    assert imp.created == 1
    assert imp.ignored_columns == {"not a field tidings knows": ["Notes", "Notes"]}
