"""The browser's import: the file is checked and shown before anything is written; the operator
changes how columns are used, confirms, and only then it runs."""

from __future__ import annotations

import html
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.operators import make_operator, sign_in
from tidings.audience.imports.preview import check_import, do_remap_import
from tidings.audience.models import ConsentEvent, Contact, Import, MailingList, Suppression
from tidings.audience.tasks import check_upload, import_contacts
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)

MAILCHIMP = (
    '"Email Address","First Name","Last Name","Phone Number","Company",MEMBER_RATING,OPTIN_TIME,'
    "OPTIN_IP,CONFIRM_TIME,CONFIRM_IP,LATITUDE,LONGITUDE,GMTOFF,DSTOFF,TIMEZONE,CC,REGION,"
    "LAST_CHANGED,LEID,EUID,NOTES,TAGS,UNSUB_TIME\r\n"
    "ann@example.com,Ann,Smith,01244 000000,Acme,2,2023-03-14 09:12:31,198.51.100.7,"
    '2023-03-14 09:20:02,198.51.100.7,,,,,,,,"2024-01-01 10:00:00",1,a,,,\r\n'
    "bob@example.org,Bob,Jones,,Initech,2,,,2022-11-02 16:45:00,,,,,,,,,,2,b,,,\r\n"
    "gone@example.com,Gone,Away,,,2,,,,,,,,,,,,,3,c,,,2024-02-02 10:00:00\r\n"
    "not-an-address,Bad,Row,,,2,,,,,,,,,,,,,4,d,,,\r\n"
    "carol@example.net,Carol,White,,,2,yesterday,,,,,,,,,,,,5,e,,,\r\n"
)


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.TIME_ZONE = "Europe/London"


@pytest.fixture
def news():
    return MailingList.objects.create(name="Product news", topic="product news")


def upload(client, news, text=MAILCHIMP, name="subscribed_members_export.csv") -> Import:
    data = text if isinstance(text, bytes) else text.encode()
    response = client.post(
        reverse("audience:imports"),
        {
            "file": SimpleUploadedFile(name, data, content_type="text/csv"),
            "mailing_list": news.pk,
            "consent_source": "our own sign-up form, double opt-in",
        },
    )
    imp = Import.objects.latest("pk")
    assert response["Location"] == reverse("audience:import", args=[imp.pk])
    return imp


def page(client, imp) -> str:
    response = client.get(reverse("audience:import", args=[imp.pk]))
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def text_of(markup: str) -> str:
    """The page's text, tags removed and spaces collapsed, to look for phrases as read."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))


def column_select(markup: str, name: str) -> str:
    """The option selected for the column named ``name``."""
    row = re.search(rf">{re.escape(name)}</label>.*?</tr>", markup, re.S).group(0)
    return re.search(r'<option value="([^"]*)" selected>', row).group(1)


def test_the_check_shows_columns_first_rows_and_counts_and_writes_nothing(owner_client, news):
    imp = upload(owner_client, news)
    assert imp.status == "checking"
    checking = text_of(page(owner_client, imp))
    assert "Checking the whole file" in checking
    assert "Confirm and import" not in checking

    check_upload.call(imp.pk)
    markup = page(owner_client, imp)
    shown = text_of(markup)
    # How each column is used, and why the others are not.
    assert column_select(markup, "OPTIN_TIME") == "optin_time"
    assert column_select(markup, "UNSUB_TIME") == "unsubscribed"
    assert column_select(markup, "Company") == "company"
    assert column_select(markup, "OPTIN_IP") == ""
    assert "an IP address of consent: not kept, as the policy's newsletter purpose does not" in (
        shown
    )
    assert column_select(markup, "MEMBER_RATING") == ""
    assert "Recognised as an export of Mailchimp" in shown
    # The first rows as they will be stored: the name joined, the consent dated, the IP dropped.
    assert re.search(
        r"2 ann@example\.com Ann Smith 01244 000000 Acme 14 Mar 2023 09:12 \(GMT\) "
        r"14 Mar 2023 09:20 \(GMT\) not kept \(policy\) subscribed",
        shown,
    )
    assert (
        "gone@example.com" in shown and "left the earlier tool (unsubscribed): suppressed" in shown
    )
    assert "bad: OPTIN_TIME is not a date of consent (text)" in shown
    # What the import would do: counts that add up to the rows of the file.
    assert re.search(r"New contacts 2 .*Marked as gone in the earlier tool.* 1 ", shown)
    assert re.search(r"Bad rows \(see the reasons\) 2 .*Rows in the file \(the sum.*\) 5", shown)
    assert "The IP addresses of consent in the file were not kept" in shown
    # Nothing of it is in the database yet.
    assert not Contact.objects.exists()
    assert not Suppression.objects.exists()
    assert not ConsentEvent.objects.exists()
    assert Import.objects.get().preview["counts"]["created"] == 2


def test_the_operator_changes_a_columns_use_and_confirms_and_it_runs_as_shown(
    owner_client, news, owner
):
    imp = upload(owner_client, news)
    check_upload.call(imp.pk)
    markup = page(owner_client, imp)
    choices = {
        f"col-{i}": column_select(markup, name)
        for i, name in enumerate(MAILCHIMP.split("\r\n")[0].replace('"', "").split(","))
    }
    choices["col-4"] = ""  # Company: not imported after all
    owner_client.post(reverse("audience:import-columns", args=[imp.pk]), choices)
    imp.refresh_from_db()
    assert (imp.status, imp.column_map) == ("checking", {"Company": ""})
    check_upload.call(imp.pk)
    markup = page(owner_client, imp)
    assert column_select(markup, "Company") == ""
    assert "ignored by --map" in markup

    owner_client.post(reverse("audience:import-confirm", args=[imp.pk]))
    imp.refresh_from_db()
    assert imp.status == "queued"
    import_contacts.call(imp.pk)
    imp.refresh_from_db()
    assert (imp.status, imp.created, imp.left_in_file, imp.bad_rows) == ("finished", 2, 1, 2)
    assert set(Contact.objects.values_list("company", flat=True)) == {""}
    assert imp.preview["counts"]["created"] == imp.created  # it did what the check said
    done = text_of(page(owner_client, imp))
    assert re.search(r"Rows in the file \(the sum of the above\) 5", done)
    assert AuditEntry.objects.filter(action="import.confirmed", actor=owner).exists()


def test_a_file_without_an_email_column_can_be_mapped_in_the_page(owner_client, news):
    imp = upload(owner_client, news, "Contacto,Persona\r\nann@example.com,Ann\r\n", "es.csv")
    check_upload.call(imp.pk)
    shown = text_of(page(owner_client, imp))
    assert "no email column" in shown
    assert "Confirm and import" not in shown
    owner_client.post(
        reverse("audience:import-columns", args=[imp.pk]), {"col-0": "email", "col-1": "name"}
    )
    check_upload.call(imp.pk)
    imp.refresh_from_db()
    assert imp.column_map == {"Contacto": "email", "Persona": "name"}
    assert imp.preview["counts"]["created"] == 1
    assert "Confirm and import" in page(owner_client, imp)


def test_a_file_that_is_not_csv_says_so_and_can_be_cancelled_with_its_upload(owner_client, news):
    imp = upload(owner_client, news, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "photo.csv")
    stored = imp.stored_path
    check_upload.call(imp.pk)
    shown = text_of(page(owner_client, imp))
    assert "not a CSV file: it is a PNG image" in shown
    assert "Confirm and import" not in shown
    response = owner_client.post(reverse("audience:import-columns", args=[imp.pk]), {"col-0": ""})
    assert "The file cannot be read: not a CSV file" in html.unescape(
        owner_client.get(response["Location"]).text
    )
    response = owner_client.post(reverse("audience:import-cancel", args=[imp.pk]))
    assert response["Location"] == reverse("audience:imports")
    assert not Import.objects.exists()
    assert not stored.exists()


def test_an_import_cannot_be_confirmed_before_its_check_nor_twice(owner_client, news):
    imp = upload(owner_client, news)
    owner_client.post(reverse("audience:import-confirm", args=[imp.pk]))
    imp.refresh_from_db()
    assert imp.status == "checking"
    check_upload.call(imp.pk)
    owner_client.post(reverse("audience:import-confirm", args=[imp.pk]))
    owner_client.post(reverse("audience:import-confirm", args=[imp.pk]))
    assert AuditEntry.objects.filter(action="import.confirmed").count() == 1
    response = owner_client.post(reverse("audience:import-columns", args=[imp.pk]), {"col-4": ""})
    imp.refresh_from_db()
    assert (imp.status, imp.column_map) == ("queued", {})
    assert "already started" in html.unescape(owner_client.get(response["Location"]).text)


def test_a_check_made_for_an_older_choice_of_columns_is_not_kept(owner_client, news, owner):
    imp = upload(owner_client, news)
    stale = Import.objects.get(pk=imp.pk)  # what a slow worker loaded
    do_remap_import(imp, {4: ""}, actor=owner)
    check_import(stale)
    imp.refresh_from_db()
    assert (imp.status, imp.preview) == ("checking", {})


def test_an_analyst_can_neither_see_nor_decide_imports(news, owner_client):
    imp = upload(owner_client, news)
    analyst = Client()
    sign_in(analyst, make_operator("anna", "analyst"))
    for name in ("import-columns", "import-confirm", "import-cancel"):
        assert analyst.post(reverse(f"audience:{name}", args=[imp.pk])).status_code == 403
    assert analyst.get(reverse("audience:import", args=[imp.pk])).status_code == 403
    assert Import.objects.get().status == "checking"


def test_the_page_works_without_javascript_and_refreshes_while_checking(owner_client, news):
    imp = upload(owner_client, news)
    markup = page(owner_client, imp)
    assert '<meta http-equiv="refresh" content="3">' in markup
    assert "<script" not in markup.split("</head>")[1]


HUBSPOT = (
    '"Record ID","First Name","Last Name","Email","Create Date","Unsubscribed from all email",'
    '"Email hard bounce reason","Marketing email confirmation status","Company Name"\r\n'
    '"501","Ann","Smith","ann@example.com","2024-03-14 09:12","","","Confirmed","Acme"\r\n'
    '"502","Bob","Jones","bob@example.org","2024-03-15 09:12","","550 no such user",'
    '"Confirmed","Acme"\r\n'
    '"503","Cy","Lee","cy@example.net","2024-03-16 09:12","","","Pending","Acme"\r\n'
)


def posted_value(markup: str, name: str) -> str:
    """What a browser sends for the column named ``name``: the selected option, or the first
    one when none is selected."""
    row = re.search(rf">{re.escape(name)}</label>.*?</tr>", markup, re.S).group(0)
    chosen = re.search(r'<option value="([^"]*)" selected>', row) or re.search(
        r'<option value="([^"]*)"', row
    )
    return chosen.group(1)


def test_checking_again_keeps_hubspots_bounce_and_confirmation_columns(owner_client, news):
    """The menus of HubSpot's "Email hard bounce reason" and "Marketing email confirmation
    status" (and Mailchimp's CLEAN_TIME) had no option for their use, so a browser showed and
    sent back the first, "name": checking again subscribed the bounced and unconfirmed people
    under the names "550 no such user" and "Pending"."""
    imp = upload(owner_client, news, HUBSPOT, "hubspot-crm-exports-all-contacts.csv")
    check_upload.call(imp.pk)
    markup = page(owner_client, imp)
    header = HUBSPOT.split("\r\n")[0].replace('"', "").split(",")
    assert posted_value(markup, "Email hard bounce reason") == "bounced"
    assert posted_value(markup, "Marketing email confirmation status") == "confirmation"
    choices = {f"col-{i}": posted_value(markup, name) for i, name in enumerate(header)}
    owner_client.post(reverse("audience:import-columns", args=[imp.pk]), choices)
    imp.refresh_from_db()
    assert imp.column_map == {}
    check_upload.call(imp.pk)
    owner_client.post(reverse("audience:import-confirm", args=[imp.pk]))
    import_contacts.call(imp.pk)
    imp.refresh_from_db()
    assert (imp.created, imp.left_in_file, imp.bad_rows) == (1, 1, 1)
    assert list(Contact.objects.values_list("email", "name")) == [("ann@example.com", "Ann Smith")]


def test_a_status_column_is_shown_in_use_and_a_file_without_ips_is_not_said_to_lose_them(
    owner_client, news
):
    # Campaign Monitor's export: no consent IP addresses at all, its sign-up date mapped.
    text = (
        "Email Address,Name,Date Subscribed,Status\r\n"
        "ann@example.com,Ann,2023-04-05 14:03:22,Active\r\n"
        "bob@example.org,Bob,2023-04-05 14:03:22,Deleted\r\n"
    )
    imp = upload(owner_client, news, text, "cm.csv")
    owner_client.post(
        reverse("audience:import-columns", args=[imp.pk]),
        {"col-0": "email", "col-1": "name", "col-2": "optin_time", "col-3": "status"},
    )
    check_upload.call(imp.pk)
    markup = page(owner_client, imp)
    shown = text_of(markup)
    assert column_select(markup, "Status") == "status"
    assert re.search(r"2 ann@example\.com Ann 05 Apr 2023 14:03 \(BST\) none in the file", shown)
    assert "not kept (policy)" not in shown
    assert "bob@example.org left the earlier tool (deleted): suppressed" in shown


def test_a_file_with_a_header_and_no_rows_says_so_and_cannot_be_confirmed(owner_client, news):
    imp = upload(owner_client, news, "Email,Name\r\n,\r\n\r\n", "empty.csv")
    check_upload.call(imp.pk)
    shown = text_of(page(owner_client, imp))
    assert "the file has a header but no rows: there is nothing to import" in shown
    assert "Confirm and import" not in shown
    response = owner_client.post(reverse("audience:import-confirm", args=[imp.pk]))
    assert response.status_code == 302
    imp.refresh_from_db()
    assert imp.status == "ready"


def test_the_check_says_before_confirming_that_dates_reading_either_way_were_read_day_first(
    owner_client, news
):
    text = (
        "Email,Name,Date subscribed\r\n"
        "ann@example.com,Ann,01/02/2024\r\n"
        "bob@example.org,Bob,03/04/2024\r\n"
    )
    imp = upload(owner_client, news, text, "sheet.csv")
    check_upload.call(imp.pk)
    shown = text_of(page(owner_client, imp))
    assert "Confirm and import" in shown
    assert "could be read day first or month first" in shown
    assert "1 Feb 2024" in shown


def dates_select(markup: str) -> str:
    """The option selected in the Dates choice."""
    select = re.search(r'<select id="dates" name="dates".*?</select>', markup, re.S).group(0)
    return re.search(r'<option value="([^"]*)" selected>', select).group(1)


def test_the_operator_chooses_month_first_dates_and_sees_them_as_they_will_be_stored(
    owner_client, news
):
    """A sheet from a US spreadsheet: every date reads either way, read day first with a note.
    The operator says month first; the check shows the dates so, and the import stores them so."""
    text = (
        "Email,Name,Date subscribed\r\n"
        "ann@example.com,Ann,01/02/2024\r\n"
        "bob@example.org,Bob,03/04/2024\r\n"
    )
    imp = upload(owner_client, news, text, "sheet.csv")
    check_upload.call(imp.pk)
    markup = page(owner_client, imp)
    assert dates_select(markup) == ""
    assert "01 Feb 2024" in text_of(markup)

    response = owner_client.post(
        reverse("audience:import-columns", args=[imp.pk]), {"dates": "month-first"}
    )
    assert response.status_code == 302
    imp.refresh_from_db()
    assert (imp.status, imp.date_order, imp.column_map) == ("checking", "month-first", {})
    check_upload.call(imp.pk)
    markup = page(owner_client, imp)
    shown = text_of(markup)
    assert dates_select(markup) == "month-first"
    assert "02 Jan 2024" in shown and "04 Mar 2024" in shown
    assert "read month first (03/04/2025 is the 4th of March), as chosen" in shown
    assert "could be read day first or month first" not in shown

    owner_client.post(reverse("audience:import-confirm", args=[imp.pk]))
    import_contacts.call(imp.pk)
    imp.refresh_from_db()
    assert (imp.status, imp.created) == ("finished", 2)
    ann = ConsentEvent.objects.get(contact__email="ann@example.com")
    assert (ann.at.year, ann.at.month, ann.at.day) == (2024, 1, 2)
    entry = AuditEntry.objects.filter(action="import.columns_chosen").get()
    assert entry.details["dates"] == "month-first"


def test_a_date_order_that_is_none_of_the_choices_is_refused_with_a_message(owner_client, news):
    text = "Email,Name,Date subscribed\r\nann@example.com,Ann,01/02/2024\r\n"
    imp = upload(owner_client, news, text, "sheet.csv")
    check_upload.call(imp.pk)
    response = owner_client.post(
        reverse("audience:import-columns", args=[imp.pk]), {"dates": "us"}, follow=True
    )
    assert "Choose how the dates are read" in text_of(html.unescape(response.content.decode()))
    imp.refresh_from_db()
    assert (imp.status, imp.date_order) == ("ready", "")


def test_a_file_without_consent_dates_offers_no_dates_choice(owner_client, news):
    imp = upload(owner_client, news, "Email,Name\r\nann@example.com,Ann\r\n", "sheet.csv")
    check_upload.call(imp.pk)
    assert 'name="dates"' not in page(owner_client, imp)


def test_the_check_of_a_file_without_a_header_line_says_so_without_the_address(owner_client, news):
    imp = upload(owner_client, news, '"Ann Smith","ann@example.com"\n', "newsletter-active.csv")
    check_upload.call(imp.pk)
    shown = text_of(page(owner_client, imp))
    assert "the file has no header line" in shown
    assert "Confirm and import" not in shown


def test_an_excel_workbook_is_checked_and_shown_like_a_csv_file(owner_client, news, tmp_path):
    from datetime import datetime

    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["Email", "Name", "Phone", "Opt-in date"])
    book.active.append(
        ["ann@example.com", "Ann Smith", 441244000000, datetime(2023, 3, 14, 9, 12)]  # noqa: DTZ001
    )
    book.active.append(["not-an-address", "Bad Row", None, None])
    path = tmp_path / "contacts.xlsx"
    book.save(path)
    imp = upload(owner_client, news, path.read_bytes(), "contacts.xlsx")
    check_upload.call(imp.pk)
    markup = page(owner_client, imp)
    shown = text_of(markup)
    assert column_select(markup, "Opt-in date") == "optin_time"
    assert column_select(markup, "Phone") == "phone"
    assert re.search(r"2 ann@example\.com Ann Smith 441244000000 14 Mar 2023 09:12 \(GMT\)", shown)
    assert re.search(r"Bad rows \(see the reasons\) 1 .*Rows in the file \(the sum.*\) 2", shown)
    assert "Confirm and import" in shown
