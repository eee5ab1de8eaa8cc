"""An operator imports a Mailchimp export in the browser: uploads it, reads the check (columns,
first rows, counts), changes a column's use, confirms, and reads the outcome."""

import re

from playwright.sync_api import Page, expect

from tests.conftest import OPERATOR_PASSWORD
from tidings.audience.models import ConsentEvent, Contact, Import, MailingList
from tidings.audience.tasks import check_upload, import_contacts

EXPORT = (
    '"Email Address","First Name","Last Name","Company",MEMBER_RATING,OPTIN_TIME,OPTIN_IP,'
    "CONFIRM_TIME,CONFIRM_IP,LEID,EUID,UNSUB_TIME\r\n"
    "ada@example.com,Ada,Lovelace,Analytical Engines,2,2023-03-14 09:12:31,198.51.100.7,"
    "2023-03-14 09:20:02,198.51.100.7,1,a,\r\n"
    "gone@example.com,Gone,Away,,2,,,,,2,b,2024-01-01 00:00:00\r\n"
)
SELF_REFRESH_MS = 30_000  # the check page refreshes every 3 s; the progress page polls every 1 s


def test_an_operator_checks_adjusts_and_confirms_an_import(page: Page, owner, tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    MailingList.objects.create(name="Product news", topic="product news")
    export = tmp_path / "subscribed_members_export.csv"
    export.write_text(EXPORT, encoding="utf-8")

    page.goto("/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/audience/imports/")
    page.get_by_label("CSV or Excel file").set_input_files(str(export))
    page.get_by_label("List").select_option(label="Product news")
    page.get_by_label("How did these people consent?").fill("our sign-up form, double opt-in")
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Check before importing")
    expect(page.get_by_text("Checking the whole file")).to_be_visible()

    imp = Import.objects.get()
    check_upload.call(imp.pk)  # what `tidings worker` does with the queued check
    # No reload by hand here or below: these pages refresh themselves while the worker runs, and a
    # reload by the test would race the page's own (Playwright: "Not attached to an active page").
    confirm = page.get_by_role("button", name="Confirm and import")  # shown once the check is done
    expect(confirm).to_be_visible(timeout=SELF_REFRESH_MS)
    expect(page.get_by_label("OPTIN_TIME")).to_have_value("optin_time")
    rows = page.get_by_role("table").filter(has_text="each row on its own")
    expect(rows).to_contain_text("Ada Lovelace")
    expect(rows).to_contain_text("14 Mar 2023 09:12")
    expect(rows).to_contain_text("left the earlier tool (unsubscribed): suppressed")
    counts = page.get_by_role("table").filter(has_text="A dry run of the whole file")
    expect(counts.get_by_role("row", name=re.compile("New contacts"))).to_contain_text("1")
    expect(counts.get_by_role("row", name=re.compile("Rows in the file"))).to_contain_text("2")
    assert not Contact.objects.exists()

    # The company is not to be imported: the operator says so, by keyboard, and checks again.
    page.get_by_label("Company").focus()
    page.keyboard.press("End")  # the last choice: ignore
    expect(page.get_by_label("Company")).to_have_value("")
    page.get_by_role("button", name="Use these columns and check again").click()
    expect(page.get_by_text("Checking the whole file")).to_be_visible()
    check_upload.call(imp.pk)
    expect(confirm).to_be_visible(timeout=SELF_REFRESH_MS)
    expect(page.get_by_label("Company")).to_have_value("")

    confirm.click()
    expect(page.locator("#import-progress")).to_be_visible()
    import_contacts.call(imp.pk)  # what `tidings worker` does with the queued import
    outcome = page.get_by_role("table").filter(has_text="The counts add up")
    expect(outcome.get_by_role("row", name=re.compile("Marked as gone"))).to_contain_text(
        "1", timeout=SELF_REFRESH_MS
    )
    ada = Contact.objects.get()
    assert (ada.name, ada.company) == ("Ada Lovelace", "")
    assert ConsentEvent.objects.count() == 2  # the opt-in and the confirmation, at their times


def test_the_check_reads_on_a_phone(page: Page, owner, tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    news = MailingList.objects.create(name="Product news", topic="product news")
    from tidings.audience.imports.preview import start_check

    imp = start_check(
        mailing_list=news,
        consent_source="fair",
        operator=owner,
        original_filename="export.csv",
        upload=[EXPORT.encode()],
    )
    check_upload.call(imp.pk)
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/audience/imports/{imp.pk}/")
    expect(page.get_by_role("button", name="Confirm and import")).to_be_visible()
    # Wide tables scroll inside themselves: the page itself never scrolls sideways.
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    # ...and what a table is, and what to do with it, is read without scrolling it sideways
    # (a caption as wide as its table ran off the screen: "...and check again. Ignored colu").
    clipped = page.evaluate(
        "[...document.querySelectorAll('caption')]"
        ".filter(c => c.getBoundingClientRect().right > window.innerWidth)"
        ".map(c => c.innerText.slice(0, 40))"
    )
    assert clipped == []
    # Each column's choice is in reach, and its reason for being ignored readable, without
    # scrolling the table sideways: on a phone the columns table reads as cards.
    out_of_reach = page.evaluate(
        "[...document.querySelectorAll('select[id^=col-]')]"
        ".filter(s => s.getBoundingClientRect().right > window.innerWidth"
        " || s.getBoundingClientRect().left < 0).map(s => s.id)"
    )
    assert out_of_reach == []
    why = page.get_by_text("not a field tidings knows").first
    box = why.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 375
    expect(page.locator("main")).not_to_contain_text("{#")  # no template comment shown
    # ...and is still a table of one column a row to a screen reader.
    expect(page.get_by_role("row", name=re.compile("OPTIN_TIME"))).to_have_count(1)


def test_an_operator_reads_a_us_sheets_dates_month_first_by_keyboard_on_a_phone(
    page: Page, owner, tmp_path, settings
):
    """Every date of a US sheet reads either way: the check reads them day first and says so;
    the operator chooses month first, by keyboard, on a phone, and sees them as they will be
    stored before confirming."""
    settings.DATA_DIR = tmp_path / "data"
    settings.TIME_ZONE = "Europe/London"
    news = MailingList.objects.create(name="Product news", topic="product news")
    from tidings.audience.imports.preview import start_check

    sheet = "Email,Name,Date subscribed\r\nada@example.com,Ada,01/02/2024\r\n"
    imp = start_check(
        mailing_list=news,
        consent_source="fair",
        operator=owner,
        original_filename="sheet.csv",
        upload=[sheet.encode()],
    )
    check_upload.call(imp.pk)
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"/audience/imports/{imp.pk}/")
    confirm = page.get_by_role("button", name="Confirm and import")
    expect(confirm).to_be_visible()
    expect(page.get_by_text("--dates month-first")).to_be_visible()
    rows = page.get_by_role("table").filter(has_text="each row on its own")
    expect(rows).to_contain_text("01 Feb 2024")

    dates = page.get_by_label("Dates that read either way")
    box = dates.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    dates.focus()
    page.keyboard.press("End")  # the last choice: month first
    expect(dates).to_have_value("month-first")
    page.get_by_role("button", name="Use these columns and check again").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Checking the whole file")).to_be_visible()
    check_upload.call(imp.pk)
    expect(confirm).to_be_visible(timeout=SELF_REFRESH_MS)
    expect(dates).to_have_value("month-first")
    expect(rows).to_contain_text("02 Jan 2024")
    expect(page.get_by_text("as chosen")).to_be_visible()


def test_an_operator_uploads_an_excel_workbook_and_sees_its_columns_and_dates(
    page: Page, owner, tmp_path, settings
):
    from datetime import datetime

    from openpyxl import Workbook

    settings.DATA_DIR = tmp_path / "data"
    MailingList.objects.create(name="Product news", topic="product news")
    book = Workbook()
    book.active.append(["Email", "Name", "Opt-in date"])
    book.active.append(["ada@example.com", "Ada Lovelace", datetime(2023, 3, 14, 9, 12)])  # noqa: DTZ001
    workbook = tmp_path / "contacts.xlsx"
    book.save(workbook)

    page.set_viewport_size({"width": 375, "height": 800})
    page.goto("/login/")
    page.get_by_label("Username").fill("owner")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/audience/imports/")
    page.get_by_label("CSV or Excel file").set_input_files(str(workbook))
    page.get_by_label("List").select_option(label="Product news")
    page.get_by_label("How did these people consent?").fill("paper forms at our stand")
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_text("Checking the whole file")).to_be_visible()
    check_upload.call(Import.objects.get().pk)
    confirm = page.get_by_role("button", name="Confirm and import")
    expect(confirm).to_be_visible(timeout=SELF_REFRESH_MS)
    expect(page.get_by_label("Opt-in date")).to_have_value("optin_time")
    rows = page.get_by_role("table").filter(has_text="each row on its own")
    expect(rows).to_contain_text("Ada Lovelace")
    expect(rows).to_contain_text("14 Mar 2023 09:12")
