"""Imported consent keeps its proof (GDPR Art. 7(1)): the exports of Mailchimp, listmonk, Brevo and
HubSpot are recognised, their opt-in and confirmation times (and IP addresses, where the policy
keeps them) become the consent events' own, the people they mark as gone are suppressed and
never subscribed, and the counts add up on every run."""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import re
import zipfile
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from tidings.audience.emails import email_hmac
from tidings.audience.imports import ImportFailed, summary
from tidings.audience.imports.rows import OUTCOMES
from tidings.audience.models import (
    ConsentEvent,
    Contact,
    Import,
    MailingList,
    Subscription,
    Suppression,
)
from tidings.policy import load_policy
from tidings.policy.commands import EXAMPLE_POLICY
from tidings.rights.package import build_package

from .import_helpers import CONSENT, do_import, report_rows

LONDON = ZoneInfo("Europe/London")


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.TIME_ZONE = "Europe/London"


@pytest.fixture
def news(db):
    return MailingList.objects.create(name="News", topic="product news")


@pytest.fixture(params=["fast", "generic"])
def fast(request):
    return request.param == "fast"


@pytest.fixture
def ips_kept(tmp_path, settings):
    """A policy whose newsletter purpose collects ip_address: consent IPs are then kept."""
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    old = (
        'collects = { required = ["name", "email"], optional = ["phone", "company", "job_title"] }'
    )
    assert text.count(old) == 1
    new = old.replace('"job_title"]', '"job_title", "ip_address"]')
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    settings.TIDINGS_POLICY = path
    load_policy(path)


def csv_file(tmp_path, name: str, header: list[str], rows: list[list[str]], delimiter=",") -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / name
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def events_of(email: str) -> list[tuple[datetime, str | None]]:
    return [
        (e.at, e.ip_address)
        for e in ConsentEvent.objects.filter(contact__email=email).order_by("at", "pk")
    ]


def assert_counts_add_up(imp: Import) -> None:
    assert sum(getattr(imp, name) for name in OUTCOMES) == imp.rows_read


# --- Mailchimp ----------------------------------------------------------------------------------
# The audience export: one file per status, merge fields first, then Mailchimp's own columns.
MAILCHIMP_MERGE = ["Email Address", "First Name", "Last Name", "Address", "Phone Number", "Company"]
MAILCHIMP_OWN = [
    "MEMBER_RATING", "OPTIN_TIME", "OPTIN_IP", "CONFIRM_TIME", "CONFIRM_IP", "LATITUDE",
    "LONGITUDE", "GMTOFF", "DSTOFF", "TIMEZONE", "CC", "REGION", "LAST_CHANGED", "LEID", "EUID",
    "NOTES", "TAGS",
]  # fmt: skip
MAILCHIMP_UNSUB = [
    "UNSUB_TIME", "UNSUB_CAMPAIGN_TITLE", "UNSUB_CAMPAIGN_ID", "UNSUB_REASON",
    "UNSUB_REASON_OTHER",
]  # fmt: skip
MAILCHIMP_CLEAN = ["CLEAN_TIME", "CLEAN_CAMPAIGN_TITLE", "CLEAN_CAMPAIGN_ID"]


def mailchimp_row(email, first, last, optin="", optin_ip="", confirm="", confirm_ip="", extra=()):
    """A row of Mailchimp's export; ``extra`` are the status file's own columns (UNSUB_*,
    CLEAN_*), which come after CONFIRM_IP."""
    return [
        email, first, last, "1 High St  Chester  CH1 1AA  GB", "01244 000000", "Acme",
        "2", optin, optin_ip, confirm, confirm_ip, *extra, "53.19", "-2.89", "0", "1",
        "Europe/London", "GB", "CHE", "2024-05-01 08:00:00", "123456789", "a1b2c3d4e5", "",
        '"VIP","Fair 2023"',
    ]  # fmt: skip


def mailchimp_subscribed(tmp_path):
    rows = [
        # double opt-in: signed up, then clicked the confirmation link
        mailchimp_row(
            "ann@example.com", "Ann", "Smith",
            "2023-03-14 09:12:31", "198.51.100.7", "2023-03-14 09:20:02", "198.51.100.7",
        ),
        # added by the account (no sign-up of their own): a confirmation time only
        mailchimp_row("bob@example.org", "Bob", "Jones", confirm="2022-11-02 16:45:00"),
        # an old subscriber with no times at all
        mailchimp_row("carol@example.net", "Carol", "White"),
    ]  # fmt: skip
    header = MAILCHIMP_MERGE + MAILCHIMP_OWN
    return csv_file(tmp_path, "subscribed_members_export_1a2b3c.csv", header, rows)


def test_a_mailchimp_export_keeps_its_opt_in_and_confirmation_times_as_the_consent_events(
    tmp_path, news, fast, owner
):
    imp = do_import(mailchimp_subscribed(tmp_path), news, fast=fast, operator=owner)
    assert (imp.created, imp.subscribed, imp.exporter) == (3, 3, "mailchimp")
    assert events_of("ann@example.com") == [
        (datetime(2023, 3, 14, 9, 12, 31, tzinfo=UTC), None),
        (datetime(2023, 3, 14, 9, 20, 2, tzinfo=UTC), None),
    ]
    assert events_of("bob@example.org") == [(datetime(2022, 11, 2, 16, 45, tzinfo=UTC), None)]
    [(carol_at, _)] = events_of("carol@example.net")
    assert carol_at >= imp.started_at  # no proof in the file: dated at the import
    wording = ConsentEvent.objects.filter(contact__email="ann@example.com").first().wording.text
    day = imp.started_at.astimezone(LONDON)
    assert wording == (
        f"Imported from subscribed_members_export_1a2b3c.csv, a Mailchimp export, on "
        f"{day.day} {day:%B} {day.year}, by owner. How these people consented, as the operator "
        f"stated it: {CONSENT}"
    )
    # The policy's newsletter purpose does not collect ip_address: the IPs are not kept, and
    # the import says so, and why.
    assert ConsentEvent.objects.exclude(ip_address=None).count() == 0
    assert imp.ignored_columns[
        "an IP address of consent: not kept, as the policy's newsletter purpose does not collect "
        "ip_address"
    ] == ["OPTIN_IP", "CONFIRM_IP"]
    assert imp.notes == [
        "The IP addresses of consent in the file were not kept: the policy's newsletter purpose "
        "does not collect ip_address (add it to the purpose's fields to keep them as proof)."
    ]
    assert "OPTIN_TIME" not in str(imp.ignored_columns)
    assert_counts_add_up(imp)


@pytest.mark.usefixtures("ips_kept")
def test_consent_ip_addresses_are_kept_where_the_policy_collects_ip_address(tmp_path, news, fast):
    imp = do_import(mailchimp_subscribed(tmp_path), news, fast=fast)
    assert events_of("ann@example.com") == [
        (datetime(2023, 3, 14, 9, 12, 31, tzinfo=UTC), "198.51.100.7"),
        (datetime(2023, 3, 14, 9, 20, 2, tzinfo=UTC), "198.51.100.7"),
    ]
    assert imp.notes == []
    assert not any("IP address" in why for why in imp.ignored_columns)


def test_mailchimp_unsubscribed_and_cleaned_files_suppress_and_never_subscribe(
    tmp_path, news, fast
):
    unsub = csv_file(
        tmp_path,
        "unsubscribed_members_export_1a2b3c.csv",
        MAILCHIMP_MERGE + MAILCHIMP_OWN[:5] + MAILCHIMP_UNSUB + MAILCHIMP_OWN[5:],
        [
            mailchimp_row(
                "gone@example.com",
                "Gone",
                "Person",
                "2021-01-01 10:00:00",
                extra=("2024-02-02 10:00:00", "Spring news", "abc123", "NORMAL", ""),
            ),
            # no name, which the policy requires of subscribers: still suppressed
            mailchimp_row(
                "noname@example.com", "", "", extra=("2024-02-03 10:00:00", "", "", "", "")
            ),
        ],
    )
    imp = do_import(unsub, news, fast=fast)
    assert (imp.rows_read, imp.left_in_file, imp.created, imp.bad_rows) == (2, 2, 0, 0)
    assert not Contact.objects.exists()
    assert Subscription.objects.count() == 0
    assert set(Suppression.objects.values_list("email_hmac", "reason")) == {
        (email_hmac("gone@example.com"), "unsubscribed"),
        (email_hmac("noname@example.com"), "unsubscribed"),
    }
    assert "2 who left the earlier tool (now suppressed)" in summary(imp)

    cleaned = csv_file(
        tmp_path,
        "cleaned_members_export_1a2b3c.csv",
        MAILCHIMP_MERGE + MAILCHIMP_OWN[:5] + MAILCHIMP_CLEAN + MAILCHIMP_OWN[5:],
        [mailchimp_row("bounced@example.com", "B", "Ounce", extra=("2024-03-01 00:00:00", "", ""))],
    )
    imp = do_import(cleaned, news, fast=fast)
    assert imp.left_in_file == 1
    assert Suppression.objects.get(email_hmac=email_hmac("bounced@example.com")).reason == (
        "hard_bounce"
    )
    assert not Contact.objects.exists()


def test_everyone_in_mailchimps_unsubscribed_or_cleaned_file_is_kept_off_even_without_a_time(
    tmp_path, news, fast
):
    # Someone the account unsubscribed, or imported into Mailchimp as unsubscribed, can be in
    # the unsubscribed file with no UNSUB_TIME: the file itself is what says they left.
    unsub = csv_file(
        tmp_path,
        "unsubscribed_members_export_1a2b3c.csv",
        MAILCHIMP_MERGE + MAILCHIMP_OWN[:5] + MAILCHIMP_UNSUB + MAILCHIMP_OWN[5:],
        [
            mailchimp_row("timed@example.com", "T", "Imed",
                          extra=("2024-02-02 10:00:00", "", "", "", "")),
            mailchimp_row("untimed@example.com", "Un", "Timed", "2021-01-01 10:00:00",
                          extra=("", "", "", "", "")),
        ],
    )  # fmt: skip
    imp = do_import(unsub, news, fast=fast)
    assert (imp.rows_read, imp.left_in_file, imp.created, imp.subscribed) == (2, 2, 0, 0)
    assert not Subscription.objects.exists()
    assert set(Suppression.objects.values_list("email_hmac", "reason")) == {
        (email_hmac("timed@example.com"), "unsubscribed"),
        (email_hmac("untimed@example.com"), "unsubscribed"),
    }
    cleaned = csv_file(
        tmp_path,
        "cleaned_members_export_1a2b3c.csv",
        MAILCHIMP_MERGE + MAILCHIMP_OWN[:5] + MAILCHIMP_CLEAN + MAILCHIMP_OWN[5:],
        [mailchimp_row("bounced@example.com", "B", "Ounce", extra=("", "", ""))],
    )
    imp = do_import(cleaned, news, fast=fast)
    assert (imp.left_in_file, imp.created) == (1, 0)
    assert Suppression.objects.get(email_hmac=email_hmac("bounced@example.com")).reason == (
        "hard_bounce"
    )
    assert not Contact.objects.exists()


def test_in_a_merged_sheet_of_mailchimps_files_the_unsubscribe_time_says_it_row_by_row(
    tmp_path, news
):
    # The three files merged into one sheet, under a name of one's own: a blank UNSUB_TIME is
    # a row from the subscribed file.
    path = csv_file(
        tmp_path,
        "all_of_mailchimp.csv",
        ["Email Address", "First Name", "OPTIN_TIME", "UNSUB_TIME", "LEID", "EUID"],
        [
            ["ann@example.com", "Ann", "2023-03-14 09:12:31", "", "1", "a"],
            ["gone@example.com", "Gone", "2020-01-01 00:00:00", "2024-01-01 00:00:00", "3", "c"],
        ],
    )
    imp = do_import(path, news)
    assert (imp.created, imp.left_in_file) == (1, 1)
    assert Subscription.objects.get().contact.email == "ann@example.com"


def test_a_contact_who_left_in_the_file_is_suppressed_even_if_already_subscribed_here(
    tmp_path, news, fast
):
    ann = Contact.objects.create(email="ann@example.com", name="Ann")
    Subscription.objects.create(contact=ann, mailing_list=news, status="confirmed")
    path = csv_file(
        tmp_path,
        "unsubscribed_members_export.csv",
        ["Email Address", "First Name", "OPTIN_TIME", "UNSUB_TIME", "LEID", "EUID"],
        [["ann@example.com", "Ann", "2020-01-01 10:00:00", "2024-01-01 10:00:00", "1", "e"]],
    )
    imp = do_import(path, news, fast=fast)
    assert imp.left_in_file == 1
    assert Suppression.objects.filter(email_hmac=email_hmac("ann@example.com")).exists()
    # No new grant; the subscription here ends, and the ledger says so.
    assert list(ConsentEvent.objects.values_list("action", "source")) == [("withdrawn", "import")]
    assert Subscription.objects.get().status == "unsubscribed"


# --- listmonk -----------------------------------------------------------------------------------
def test_a_listmonk_export_keeps_the_subscription_time_and_suppresses_blocklisted_people(
    tmp_path, news, fast
):
    path = csv_file(
        tmp_path,
        "subscribers.csv",
        ["uuid", "email", "name", "attributes", "status", "created_at", "updated_at"],
        [
            [
                "5d3c5ab6-95b1-4f3a-9d4e-1b7d0b0b5c9e", "ann@example.com", "Ann Smith",
                '{"company": "Acme", "city": "Chester"}', "enabled",
                "2021-06-03 10:21:45.563839 +0530 IST", "2024-01-01 00:00:00 +0000 UTC",
            ],
            [
                "c0ffee00-95b1-4f3a-9d4e-1b7d0b0b5c9e", "bob@example.org", "Bob", "{}",
                "blocklisted", "2020-01-01 09:00:00 +0000 UTC", "2023-01-01 00:00:00 +0000 UTC",
            ],
            [
                "deadbeef-95b1-4f3a-9d4e-1b7d0b0b5c9e", "carol@example.net", "Carol", "{}",
                "disabled", "2020-01-01 09:00:00 +0000 UTC", "2023-01-01 00:00:00 +0000 UTC",
            ],
        ],
    )  # fmt: skip
    imp = do_import(path, news, fast=fast)
    assert (imp.exporter, imp.created, imp.left_in_file) == ("listmonk", 1, 2)
    assert events_of("ann@example.com") == [
        (datetime(2021, 6, 3, 4, 51, 45, 563839, tzinfo=UTC), None)
    ]
    assert Contact.objects.get().company == "Acme"
    assert dict(Suppression.objects.values_list("email_hmac", "reason")) == {
        email_hmac("bob@example.org"): "unsubscribed",
        email_hmac("carol@example.net"): "manual",
    }
    assert "listmonk export" in ConsentEvent.objects.get().wording.text


# --- Brevo --------------------------------------------------------------------------------------
BREVO_HEADER = [
    "CONTACT ID", "EMAIL", "LASTNAME", "FIRSTNAME", "SMS", "DOUBLE_OPT-IN", "OPT_IN", "JOB_TITLE",
    "EMAIL_BLACKLISTED", "ADDED_TIME", "MODIFIED_TIME",
]  # fmt: skip


def test_a_brevo_export_dates_consent_at_the_contacts_creation_in_the_local_time_zone(
    tmp_path, news, fast
):
    path = csv_file(
        tmp_path,
        "contacts_export.csv",
        BREVO_HEADER,
        [
            ["17", "ann@example.com", "Smith", "Ann", "447700900123", "Yes", "Yes", "Buyer", "No",
             "14-07-2023 09:12", "01-02-2024 10:00"],
            ["18", "bob@example.org", "Jones", "Bob", "", "No", "", "", "Yes",
             "02-01-2022", "01-02-2024 10:00"],
        ],
        delimiter=";",
    )  # fmt: skip
    imp = do_import(path, news, fast=fast)
    assert (imp.exporter, imp.created, imp.left_in_file) == ("brevo", 1, 1)
    # 14 July 2023, 09:12 in London (summer time) is 08:12 UTC.
    assert events_of("ann@example.com") == [(datetime(2023, 7, 14, 8, 12, tzinfo=UTC), None)]
    ann = Contact.objects.get()
    assert (ann.name, ann.phone, ann.job_title) == ("Ann Smith", "447700900123", "Buyer")
    assert Suppression.objects.get().email_hmac == email_hmac("bob@example.org")


# --- HubSpot ------------------------------------------------------------------------------------
HUBSPOT_HEADER = [
    "Record ID", "First Name", "Last Name", "Email", "Phone Number", "Contact owner",
    "Primary Associated Company ID", "Last Activity Date", "Lead Status",
    "Marketing contact status", "Create Date", "Associated Company",
    "Unsubscribed from all email", "Email hard bounce reason", "Marketing email confirmation",
]  # fmt: skip


def test_a_hubspot_export_dates_consent_at_creation_and_keeps_gone_and_pending_people_out(
    tmp_path, news, fast
):
    def row(
        n,
        email,
        unsub="false",
        bounce="",
        confirmation="confirmed",
        created=None,
        marketing="Marketing contact",
    ):
        return [
            f"10000000{n}", f"P{n}", "Example", email, "", "Sales Team", "", "", "Open",
            marketing, created or "2023-01-10 10:00", "Acme", unsub, bounce, confirmation,
        ]  # fmt: skip

    path = csv_file(
        tmp_path,
        "hubspot-crm-exports-all-contacts-2024-05-01.csv",
        HUBSPOT_HEADER,
        [
            row(1, "ann@example.com"),
            row(2, "bob@example.org", unsub="true"),
            row(3, "carol@example.net", bounce="MAILBOX_NOT_FOUND"),
            row(4, "dave@example.com", confirmation="double_opt_in_pending"),
            # a contact the account keeps out of its marketing email: a customer, a lead from
            # a purchased list... nothing in the file says they opted in
            row(5, "erin@example.com", marketing="Non-marketing contact"),
        ],
    )
    imp = do_import(path, news, fast=fast)
    assert (imp.exporter, imp.created, imp.left_in_file, imp.bad_rows) == ("hubspot", 1, 2, 2)
    assert events_of("ann@example.com") == [(datetime(2023, 1, 10, 10, 0, tzinfo=UTC), None)]
    assert dict(Suppression.objects.values_list("email_hmac", "reason")) == {
        email_hmac("bob@example.org"): "unsubscribed",
        email_hmac("carol@example.net"): "hard_bounce",
    }
    assert imp.bad_reasons == {
        "consent not confirmed": {"count": 1, "first_line": 5},
        "no consent": {"count": 1, "first_line": 6},
    }
    assert [r[1] for r in report_rows(imp)[1:]] == [
        "Marketing email confirmation says the person never confirmed: no consent to import",
        "Marketing contact status says the person never subscribed: no consent to import",
    ]
    assert_counts_add_up(imp)


# --- bad proof ----------------------------------------------------------------------------------
def test_garbage_opt_in_dates_make_their_rows_bad_without_the_value_and_the_rest_import(
    tmp_path, news, fast, caplog
):
    caplog.set_level(logging.DEBUG)
    header = ["Email Address", "First Name", "OPTIN_TIME", "OPTIN_IP", "CONFIRM_TIME", "LEID"]
    path = csv_file(
        tmp_path,
        "members.csv",
        header,
        [
            ["ann@example.com", "Ann", "2023-03-14 09:12:31", "", "", "1"],
            ["bob@example.org", "Bob", "last Tuesday-ish", "", "", "2"],
            ["carol@example.net", "Carol", "", "", "31-02-2023 10:00", "3"],
            ["dave@example.com", "Dave", "1699999999", "", "", "4"],
            ["erin@example.com", "Erin", "2999-01-01 00:00:00", "", "", "5"],
        ],
    )
    imp = do_import(path, news, fast=fast)
    assert list(Contact.objects.values_list("email", flat=True)) == ["ann@example.com"]
    assert imp.bad_reasons == {"invalid consent date": {"count": 4, "first_line": 3}}
    details = [row[:2] for row in report_rows(imp)[1:]]
    assert details == [
        ["3", "OPTIN_TIME is not a date of consent (text)"],
        ["4", "CONFIRM_TIME is not a date of consent (not a real date)"],
        ["5", "OPTIN_TIME is not a date of consent (a number)"],
        ["6", "OPTIN_TIME is not a date of consent (a date in the future)"],
    ]
    for value in ("Tuesday", "31-02", "1699999999", "2999"):
        assert value not in caplog.text
        assert value not in str(imp.bad_reasons)
    assert_counts_add_up(imp)


def test_a_mailchimp_export_saved_by_a_us_spreadsheet_reads_its_dates_month_first(
    tmp_path, news, fast
):
    """Opened in Excel set up for the US and saved again, OPTIN_TIME reads 3/14/2023 9:12: the
    file's unambiguous dates say month first, so 3/4/2023 is the 4th of March, not the 3rd of
    April (a wrong consent date), and 3/14/2023 is a date, not a bad row."""
    header = ["Email Address", "First Name", "OPTIN_TIME", "CONFIRM_TIME", "LEID", "EUID"]
    path = csv_file(
        tmp_path,
        "subscribed_members_export_1a2b3c.csv",
        header,
        [
            ["ann@example.com", "Ann", "3/4/2023 9:12", "3/4/2023 9:20", "1", "a"],
            ["bob@example.org", "Bob", "3/14/2023 16:45", "", "2", "b"],
            ["carol@example.net", "Carol", "11/2/22 4:45 PM", "", "3", "c"],
        ],
    )
    imp = do_import(path, news, fast=fast)
    assert (imp.created, imp.bad_rows) == (3, 0)
    assert events_of("ann@example.com") == [
        (datetime(2023, 3, 4, 9, 12, tzinfo=UTC), None),
        (datetime(2023, 3, 4, 9, 20, tzinfo=UTC), None),
    ]
    assert events_of("bob@example.org") == [(datetime(2023, 3, 14, 16, 45, tzinfo=UTC), None)]
    assert events_of("carol@example.net") == [(datetime(2022, 11, 2, 16, 45, tzinfo=UTC), None)]
    assert any("month first" in note for note in imp.notes)
    assert_counts_add_up(imp)


def test_a_file_with_day_first_dates_keeps_reading_them_day_first(tmp_path, news):
    header = ["Email Address", "First Name", "OPTIN_TIME", "LEID", "EUID", "MEMBER_RATING"]
    path = csv_file(
        tmp_path,
        "members.csv",
        header,
        [
            ["ann@example.com", "Ann", "03/04/2023 09:12", "1", "a", "2"],
            ["bob@example.org", "Bob", "14/03/2023 16:45", "2", "b", "2"],
        ],
    )
    imp = do_import(path, news)
    assert events_of("ann@example.com") == [(datetime(2023, 4, 3, 9, 12, tzinfo=UTC), None)]
    assert events_of("bob@example.org") == [(datetime(2023, 3, 14, 16, 45, tzinfo=UTC), None)]
    assert not any("month first" in note for note in imp.notes)


@pytest.mark.usefixtures("ips_kept")
def test_an_ip_address_that_is_not_one_makes_its_row_bad(tmp_path, news):
    path = csv_file(
        tmp_path,
        "m.csv",
        ["Email Address", "First Name", "OPTIN_TIME", "OPTIN_IP", "LEID", "EUID"],
        [
            ["ann@example.com", "Ann", "2023-03-14 09:12:31", "2001:db8::1", "1", "a"],
            ["bob@example.org", "Bob", "2023-03-14 09:12:31", "300.1.2.3", "2", "b"],
        ],
    )
    imp = do_import(path, news)
    assert events_of("ann@example.com")[0][1] == "2001:db8::1"
    assert report_rows(imp)[1][:2] == ["3", "OPTIN_IP is not an IP address (not a real IP address)"]


# --- counts and re-imports ----------------------------------------------------------------------
def test_re_importing_gives_consistent_counts_that_add_up_to_the_rows(tmp_path, news, fast):
    header = ["Email Address", "First Name", "OPTIN_TIME", "UNSUB_TIME", "LEID", "EUID"]
    path = csv_file(
        tmp_path,
        "members.csv",
        header,
        [
            ["ann@example.com", "Ann", "2023-03-14 09:12:31", "", "1", "a"],
            ["bob@example.org", "Bob", "2023-03-15 09:00:00", "", "2", "b"],
            ["gone@example.com", "Gone", "2020-01-01 00:00:00", "2024-01-01 00:00:00", "3", "c"],
            ["ANN@example.com", "Ann again", "", "", "4", "d"],
            ["bad-address", "Bad", "", "", "5", "e"],
            ["carol@example.net", "Carol", "nonsense", "", "6", "f"],
        ],
    )
    first = do_import(path, news, fast=fast)
    again = do_import(path, news, fast=fast)
    expect_first = {"created": 2, "left_in_file": 1, "duplicates": 1, "bad_rows": 2}
    assert {k: getattr(first, k) for k in expect_first} == expect_first
    expect_again = {"created": 0, "unchanged": 2, "left_in_file": 1, "duplicates": 1, "bad_rows": 2}
    assert {k: getattr(again, k) for k in expect_again} == expect_again
    for imp in (first, again):
        assert imp.rows_read == 6
        assert_counts_add_up(imp)
    assert ConsentEvent.objects.count() == 2  # the second run granted nothing new
    assert Suppression.objects.count() == 1


def test_an_existing_contact_subscribed_by_an_import_gets_the_files_consent_time(
    tmp_path, news, fast
):
    Contact.objects.create(email="ann@example.com", name="Ann")
    path = csv_file(
        tmp_path,
        "m.csv",
        ["Email Address", "First Name", "OPTIN_TIME", "CONFIRM_TIME", "LEID", "EUID"],
        [["ann@example.com", "Ann", "2023-03-14 09:12:31", "2023-03-14 09:30:00", "1", "a"]],
    )
    imp = do_import(path, news, fast=fast)
    assert (imp.updated, imp.subscribed) == (1, 1)
    assert [at for at, _ in events_of("ann@example.com")] == [
        datetime(2023, 3, 14, 9, 12, 31, tzinfo=UTC),
        datetime(2023, 3, 14, 9, 30, tzinfo=UTC),
    ]


def test_any_file_can_name_its_proof_columns_with_map(tmp_path, news):
    path = csv_file(
        tmp_path,
        "fair.csv",
        ["Email", "Name", "Signed up", "Left"],
        [
            ["ann@example.com", "Ann", "2023-03-14T09:12:31+01:00", "no"],
            ["bob@example.org", "Bob", "2023-03-14", "yes"],
        ],
    )
    imp = do_import(path, news, column_map={"Signed up": "optin_time", "Left": "unsubscribed"})
    assert (imp.created, imp.left_in_file, imp.exporter) == (1, 1, "csv")
    assert events_of("ann@example.com") == [(datetime(2023, 3, 14, 8, 12, 31, tzinfo=UTC), None)]
    wording = ConsentEvent.objects.get().wording.text
    assert wording.startswith("Imported from fair.csv, a CSV file, on ")


def test_a_map_to_a_proof_column_that_does_not_exist_fails(tmp_path, news):
    path = csv_file(tmp_path, "x.csv", ["Email", "Name"], [["a@example.com", "A"]])
    with pytest.raises(ImportFailed, match="no column named 'Joined'"):
        do_import(path, news, column_map={"Joined": "optin_time"})


def test_the_command_says_who_left_and_that_ips_were_not_kept(tmp_path, news, capsys):
    path = mailchimp_subscribed(tmp_path)
    call_command(
        "import", "contacts", str(path), "--list", "News", "--consent-source", CONSENT,
        verbosity=0,
    )  # fmt: skip
    out = capsys.readouterr().out
    assert re.search(r"Imported 3 rows into 'News'.*3 created", out)
    assert "IP addresses of consent in the file were not kept" in out
    wording = ConsentEvent.objects.first().wording.text
    assert "by an operator at the command line" in wording


def test_two_writers_keep_the_proof_and_suppress_who_left(transactional_db, tmp_path, settings):
    from django.db import connection

    from tidings.audience.imports import ImportConfig, create_import, run_import

    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL's writer writes with two connections")
    news = MailingList.objects.create(name="News", topic="product news")
    header = ["Email Address", "First Name", "OPTIN_TIME", "CONFIRM_TIME", "UNSUB_TIME", "LEID"]
    rows = [
        [f"p{i}@example.com", f"P{i}", "2023-03-14 09:12:31", "2023-03-14 09:30:00", "", str(i)]
        for i in range(20)
    ]
    rows += [[f"gone{i}@example.com", "", "", "", "2024-01-01 00:00:00", "x"] for i in range(5)]
    path = csv_file(tmp_path, "members.csv", header, rows)
    imp = create_import(mailing_list=news, consent_source=CONSENT, original_filename="m.csv")
    config = ImportConfig(batch_rows=4, writers=2, parallel_min_bytes=0)
    imp = run_import(imp, path, config=config)
    assert (imp.created, imp.left_in_file, imp.rows_read) == (20, 5, 25)
    assert ConsentEvent.objects.count() == 40
    assert set(ConsentEvent.objects.values_list("at", flat=True)) == {
        datetime(2023, 3, 14, 9, 12, 31, tzinfo=UTC),
        datetime(2023, 3, 14, 9, 30, tzinfo=UTC),
    }
    assert Suppression.objects.count() == 5
    row = Import.objects.get(pk=imp.pk)
    assert (row.created, row.left_in_file) == (20, 5)  # the writers' own sums, committed


# --- what people are told -----------------------------------------------------------------------
def test_the_privacy_notice_says_lists_came_from_an_earlier_tool_once_an_import_brought_people(
    tmp_path, news, client
):
    def sources() -> tuple[str, list[str]]:
        page = html.unescape(client.get("/privacy").content.decode())
        data = client.get("/privacy.json").json()["purposes"]["newsletter"]["recorded_sources"]
        return page, data

    page, data = sources()
    assert "lists moved from our earlier newsletter tool" not in page.lower()
    assert data == []
    do_import(mailchimp_subscribed(tmp_path), news)
    page, data = sources()
    assert "Lists moved from our earlier newsletter tool" in page
    assert data == ["lists moved from our earlier newsletter tool"]


def test_the_access_package_tells_an_imported_person_which_file_and_tool_they_came_from(
    tmp_path, news
):
    imp = do_import(mailchimp_subscribed(tmp_path), news)
    files = unzip(build_package(Contact.objects.get(email="ann@example.com")))
    day = imp.started_at.astimezone(LONDON)
    came_from = (
        f"subscribed_members_export_1a2b3c.csv, a Mailchimp export, imported on "
        f"{day.day} {day:%B} {day.year}"
    )
    record = json.loads(files["data.json"])["data"]["contact"]["records"][0]
    assert record["came_from"] == [came_from]
    assert came_from in files["contact.csv"]
    # Someone who signed up themselves is told nothing of the kind.
    bob = Contact.objects.create(email="zed@example.com", name="Zed")
    record = json.loads(unzip(build_package(bob))["data.json"])["data"]["contact"]["records"][0]
    assert "came_from" not in record


def unzip(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode("utf-8-sig") for name in archive.namelist()}


@pytest.mark.parametrize(
    ("dates", "note"),
    [
        # None of the dates tells which number is the day: 01/02/2023 is the 1st of February in
        # the UK, the 2nd of January in the US.
        (["01/02/2023 09:12", "03/04/2023 16:45", "05/05/2023 10:00"], "read day first or month"),
        # The file writes them both ways: 14/03 and 03/14.
        (["01/02/2023 09:12", "14/03/2023 16:45", "03/14/2023 10:00"], "both day first"),
    ],
)
def test_dates_that_read_either_way_are_read_day_first_and_the_import_says_so(
    tmp_path, news, dates, note
):
    """A day-first reading is a guess when nothing in the file tells: the import, its dry run
    and the preview say it was made, rather than pick silently."""
    header = ["Email Address", "First Name", "OPTIN_TIME", "LEID", "EUID", "MEMBER_RATING"]
    people = ["ann@example.com", "bob@example.org", "cy@example.net"]
    path = csv_file(
        tmp_path,
        "members.csv",
        header,
        [
            [email, "X", date, str(i), "e", "2"]
            for i, (email, date) in enumerate(zip(people, dates, strict=True))
        ],
    )
    imp = do_import(path, news)
    assert events_of("ann@example.com") == [(datetime(2023, 2, 1, 9, 12, tzinfo=UTC), None)]
    assert [n for n in imp.notes if "first" in n] == [n for n in imp.notes if note in n]
    assert len([n for n in imp.notes if note in n]) == 1
    assert_counts_add_up(imp)


@pytest.mark.parametrize("number", ["45123", "45123.5417"])
def test_a_spreadsheet_date_number_in_a_date_column_is_a_bad_row_that_says_what_to_do(
    tmp_path, news, number
):
    """A sheet saved as CSV with its date column not formatted as dates writes 45123 (the 17th
    of July 2023, or 2027 in a workbook from an old Excel for Mac: the CSV does not say which)."""
    path = csv_file(
        tmp_path,
        "sheet.csv",
        ["Email", "Name", "Date subscribed", "Unsubscribed at"],
        [
            ["ann@example.com", "Ann", number, ""],
            ["bob@example.org", "Bob", "2023-07-17", number],
            ["cy@example.net", "Cy", "2023-07-17", ""],
        ],
    )
    imp = do_import(path, news)
    assert (imp.created, imp.bad_rows) == (1, 2)
    rows = report_rows(imp)
    assert rows[1][:2] == [
        "2",
        "Date subscribed is not a date of consent (looks like a spreadsheet date number; format"
        " the column as a date before exporting)",
    ]
    assert rows[2][:2] == [
        "3",
        "Unsubscribed at is not yes or no, nor a date (looks like a spreadsheet date number;"
        " format the column as a date before exporting)",
    ]
    assert_counts_add_up(imp)


def test_the_note_on_dates_that_read_either_way_names_the_month_first_option(tmp_path, news):
    """The note must leave the operator a way on: not "fix the file", but the option that
    reads it right."""
    header = ["Email Address", "First Name", "OPTIN_TIME", "LEID", "EUID", "MEMBER_RATING"]
    rows = [["ann@example.com", "A", "01/02/2023", "1", "e", "2"]]
    path = csv_file(tmp_path, "m.csv", header, rows)
    imp = do_import(path, news)
    (note,) = [n for n in imp.notes if "first" in n]
    assert "--dates month-first" in note
    assert "Dates, month first" in note


def test_dates_read_month_first_at_the_operators_word(tmp_path, news, fast, capsys):
    """A US spreadsheet whose dates all read either way (01/02/2023, 03/04/2023): nothing in the
    file tells, so only the operator can say they are month first."""
    header = ["Email Address", "First Name", "OPTIN_TIME", "LEID", "EUID", "MEMBER_RATING"]
    path = csv_file(
        tmp_path,
        "members.csv",
        header,
        [
            ["ann@example.com", "Ann", "01/02/2023 09:12", "1", "a", "2"],
            ["bob@example.org", "Bob", "03/04/2023 16:45", "2", "b", "2"],
        ],
    )
    imp = do_import(path, news, fast=fast, date_order="month-first")
    assert events_of("ann@example.com") == [(datetime(2023, 1, 2, 9, 12, tzinfo=UTC), None)]
    assert events_of("bob@example.org") == [(datetime(2023, 3, 4, 16, 45, tzinfo=UTC), None)]
    assert [n for n in imp.notes if "first" in n] == [
        "The consent dates were read month first (03/04/2025 is the 4th of March), as chosen."
    ]
    assert_counts_add_up(imp)


def test_the_command_reads_dates_month_first_with_dates_month_first(tmp_path, news, capsys):
    header = ["Email Address", "First Name", "OPTIN_TIME", "LEID", "EUID", "MEMBER_RATING"]
    rows = [["ann@example.com", "Ann", "01/02/2023 09:12", "1", "a", "2"]]
    path = csv_file(tmp_path, "members.csv", header, rows)
    call_command(
        "import", "contacts", path, "--list", "News", "--dates", "month-first", verbosity=0
    )
    assert events_of("ann@example.com") == [(datetime(2023, 1, 2, 9, 12, tzinfo=UTC), None)]
    assert "read month first (03/04/2025 is the 4th of March), as chosen" in capsys.readouterr().out
    assert Import.objects.get().date_order == "month-first"


def test_a_chosen_order_the_files_own_dates_deny_makes_those_rows_bad_and_says_so(tmp_path, news):
    header = ["Email Address", "First Name", "OPTIN_TIME", "LEID", "EUID", "MEMBER_RATING"]
    rows = [
        ["ann@example.com", "Ann", "01/02/2023 09:12", "1", "a", "2"],
        ["bob@example.org", "Bob", "14/03/2023 16:45", "2", "b", "2"],
    ]
    imp = do_import(csv_file(tmp_path, "m.csv", header, rows), news, date_order="month-first")
    assert (imp.created, imp.bad_rows) == (1, 1)
    assert events_of("ann@example.com") == [(datetime(2023, 1, 2, 9, 12, tzinfo=UTC), None)]
    (note,) = [n for n in imp.notes if "first" in n]
    assert "Some of the file's dates can only be day first" in note
    assert_counts_add_up(imp)


def test_the_command_refuses_an_unknown_date_order_in_one_line(transactional_db, tmp_path, capsys):
    from tidings.cli import main

    MailingList.objects.create(name="News", topic="product news")
    path = tmp_path / "in.csv"
    path.write_text("Email,Name\nann@example.com,Ann\n")
    with pytest.raises(SystemExit) as exited:
        main(["import", "contacts", str(path), "--list", "News", "--dates", "us", "-v0"])
    assert exited.value.code != 0
    assert "--dates: invalid choice: 'us'" in capsys.readouterr().err
    assert not Contact.objects.exists()


def test_a_file_whose_dates_read_one_way_only_says_nothing_of_their_order(tmp_path, news):
    header = ["Email Address", "First Name", "OPTIN_TIME", "LEID", "EUID", "MEMBER_RATING"]
    path = csv_file(
        tmp_path,
        "members.csv",
        header,
        [
            ["ann@example.com", "Ann", "05/05/2023 09:12", "1", "a", "2"],
            ["bob@example.org", "Bob", "2023-03-04 16:45", "2", "b", "2"],
        ],
    )
    assert not [n for n in do_import(path, news).notes if "first" in n]
