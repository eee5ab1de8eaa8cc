"""Files from the other tools people move from (Kit, MailerLite, MailPoet, Substack, Campaign
Monitor, a spreadsheet of one's own): whoever the file says left or never confirmed is not
subscribed, whatever the tool calls it, and the consent times the tool keeps become the events'
own."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from tidings.audience.emails import email_hmac
from tidings.audience.imports.rows import OUTCOMES
from tidings.audience.models import ConsentEvent, Contact, Import, MailingList, Suppression
from tidings.policy import load_policy
from tidings.policy.commands import EXAMPLE_POLICY

from .import_helpers import do_import


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
def name_optional(tmp_path, settings):
    """A policy whose newsletter asks for the address only (Substack's export has no names)."""
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    old = (
        'collects = { required = ["name", "email"], optional = ["phone", "company", "job_title"] }'
    )
    assert text.count(old) == 1
    new = old.replace(
        '["name", "email"], optional = ["phone"', '["email"], optional = ["name", "phone"'
    )
    assert new != old
    path = tmp_path / "policy.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    settings.TIDINGS_POLICY = path
    load_policy(path)
    yield
    load_policy(EXAMPLE_POLICY)


def csv_file(tmp_path, name: str, header: list[str], rows: list[list[str]]):
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / name
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def subscribed() -> set[str]:
    return set(
        Contact.objects.filter(subscriptions__status="confirmed").values_list("email", flat=True)
    )


def suppressed() -> dict[str, str]:
    return dict(Suppression.objects.values_list("email_hmac", "reason"))


def assert_counts_add_up(imp: Import) -> None:
    assert sum(getattr(imp, name) for name in OUTCOMES) == imp.rows_read


def test_a_status_column_in_any_file_keeps_who_left_or_never_confirmed_off_the_list(
    tmp_path, news, fast
):
    # Campaign Monitor's, MailerLite's and most tools' words for who is not on the list.
    path = csv_file(
        tmp_path,
        "subscribers.csv",
        ["Email Address", "Name", "Date Subscribed", "Status"],
        [
            ["ann@example.com", "Ann", "2023-04-05 14:03:22", "Active"],
            ["bob@example.org", "Bob", "2023-04-05 14:03:22", "Unsubscribed"],
            ["cy@example.net", "Cy", "2023-04-05 14:03:22", "Bounced"],
            ["di@example.com", "Di", "2023-04-05 14:03:22", "Deleted"],
            ["ed@example.com", "Ed", "2023-04-05 14:03:22", "junk"],
            ["flo@example.com", "Flo", "2023-04-05 14:03:22", "Unconfirmed"],
            ["gus@example.com", "Gus", "2023-04-05 14:03:22", "cancelled"],
        ],
    )
    imp = do_import(path, news, fast=fast)
    assert subscribed() == {"ann@example.com"}
    assert suppressed() == {
        email_hmac("bob@example.org"): "unsubscribed",
        email_hmac("cy@example.net"): "hard_bounce",
        email_hmac("di@example.com"): "manual",
        email_hmac("ed@example.com"): "complaint",
        email_hmac("gus@example.com"): "unsubscribed",
    }
    assert (imp.created, imp.left_in_file, imp.bad_rows) == (1, 5, 1)
    assert imp.bad_reasons == {"consent not confirmed": {"count": 1, "first_line": 7}}
    assert_counts_add_up(imp)


def test_a_sign_up_and_confirmation_date_in_any_file_become_the_consent_times(tmp_path, news, fast):
    # Campaign Monitor's "Date Subscribed", a sheet's "Confirmed on": headers that can mean
    # nothing but when the person subscribed, read without --map.
    path = csv_file(
        tmp_path,
        "subscribers.csv",
        ["Email Address", "Name", "Date Subscribed", "Confirmed on", "Status"],
        [
            ["ann@example.com", "Ann", "2023-04-05 14:03:22", "2023-04-05 14:10:00", "Active"],
            ["bob@example.org", "Bob", "05/01/2022 09:00", "", "Active"],
            ["cy@example.net", "Cy", "last spring", "", "Active"],
        ],
    )
    imp = do_import(path, news, fast=fast)
    # London is an hour ahead of UTC in April; January 2022 is winter time.
    assert sorted((e.contact.email, e.at) for e in ConsentEvent.objects.all()) == [
        ("ann@example.com", datetime(2023, 4, 5, 13, 3, 22, tzinfo=UTC)),
        ("ann@example.com", datetime(2023, 4, 5, 13, 10, tzinfo=UTC)),
        ("bob@example.org", datetime(2022, 1, 5, 9, 0, tzinfo=UTC)),
    ]
    assert (imp.created, imp.bad_rows) == (2, 1)
    assert imp.bad_reasons == {"invalid consent date": {"count": 1, "first_line": 4}}
    assert_counts_add_up(imp)


def test_an_unsubscribed_column_in_any_file_keeps_who_left_off_the_list(tmp_path, news):
    path = csv_file(
        tmp_path,
        "sheet.csv",
        ["Email", "Name", "Unsubscribed"],
        [["ann@example.com", "Ann", ""], ["bob@example.org", "Bob", "2024-01-02 10:00"]],
    )
    imp = do_import(path, news)
    assert subscribed() == {"ann@example.com"}
    assert suppressed() == {email_hmac("bob@example.org"): "unsubscribed"}
    assert imp.left_in_file == 1


# --- Kit (ConvertKit) ---------------------------------------------------------------------------
# Its subscribers as its API names them: first_name, email_address, state (active, cancelled,
# bounced, complained, inactive: not confirmed), created_at in UTC with a Z.
def test_a_kit_export_keeps_the_sign_up_time_and_keeps_cancelled_and_inactive_people_off(
    tmp_path, news, fast
):
    path = csv_file(
        tmp_path,
        "subscribers-export.csv",
        ["first_name", "email_address", "state", "created_at", "tags"],
        [
            ["Ann", "ann@example.com", "active", "2025-03-03T10:00:00Z", "creators"],
            ["Bob", "bob@example.org", "cancelled", "2025-04-04T10:00:00Z", ""],
            ["Cy", "cy@example.net", "bounced", "2025-04-04T10:00:00Z", ""],
            ["Di", "di@example.com", "complained", "2025-04-04T10:00:00Z", ""],
            ["Ed", "ed@example.com", "inactive", "2025-04-04T10:00:00Z", ""],
        ],
    )
    imp = do_import(path, news, fast=fast)
    assert imp.exporter == "kit"
    assert subscribed() == {"ann@example.com"}
    assert [e.at for e in ConsentEvent.objects.all()] == [datetime(2025, 3, 3, 10, tzinfo=UTC)]
    assert suppressed() == {
        email_hmac("bob@example.org"): "unsubscribed",
        email_hmac("cy@example.net"): "hard_bounce",
        email_hmac("di@example.com"): "complaint",
    }
    assert (imp.left_in_file, imp.bad_rows) == (3, 1)
    assert "a Kit export" in ConsentEvent.objects.get().wording.text
    assert_counts_add_up(imp)


# --- MailerLite ---------------------------------------------------------------------------------
# Its subscriber fields: status (active, unsubscribed, unconfirmed, bounced, junk),
# subscribed_at and ip_address (the sign-up), opted_in_at and optin_ip (the confirmation),
# unsubscribed_at; times as "2021-08-31 14:22:08".
def test_a_mailerlite_export_keeps_sign_up_and_confirmation_times_and_who_left(
    tmp_path, news, fast
):
    header = [
        "email", "name", "last_name", "company", "status", "subscribed_at", "ip_address",
        "opted_in_at", "optin_ip", "unsubscribed_at", "z_i_p",
    ]  # fmt: skip
    path = csv_file(
        tmp_path,
        "subscribers.csv",
        header,
        [
            ["ann@example.com", "Ann", "Lee", "Acme", "active", "2023-04-05 14:03:22",
             "203.0.113.5", "2023-04-05 14:05:00", "203.0.113.5", "", "CH1"],
            ["bob@example.org", "Bob", "Ray", "", "unsubscribed", "2022-01-01 10:00:00", "",
             "", "", "2024-01-01 10:00:00", ""],
            ["cy@example.net", "Cy", "Ho", "", "unconfirmed", "2023-04-05 14:03:22", "", "",
             "", "", ""],
            ["di@example.com", "Di", "Yu", "", "junk", "2023-04-05 14:03:22", "", "", "", "",
             ""],
        ],
    )  # fmt: skip
    imp = do_import(path, news, fast=fast)
    assert imp.exporter == "mailerlite"
    assert subscribed() == {"ann@example.com"}
    # London in April is an hour ahead of UTC.
    assert [e.at for e in ConsentEvent.objects.order_by("at")] == [
        datetime(2023, 4, 5, 13, 3, 22, tzinfo=UTC),
        datetime(2023, 4, 5, 13, 5, tzinfo=UTC),
    ]
    assert Contact.objects.get().name == "Ann Lee"
    assert suppressed() == {
        email_hmac("bob@example.org"): "unsubscribed",
        email_hmac("di@example.com"): "complaint",
    }
    assert (imp.left_in_file, imp.bad_rows) == (2, 1)
    assert_counts_add_up(imp)


# --- MailPoet -----------------------------------------------------------------------------------
# Subscribers > Export, as MailPoet writes it: a UTF-8 BOM, every cell quoted, a quote inside a
# cell written \\" (not doubled), its header "Email", "First name", "Last name", "Subscription
# IP", "Subscription time", "Confirmation time", "Confirmation IP", "List status", "Global
# status", then "List"; times in UTC.
MAILPOET_HEADER = (
    '"Email","First name","Last name","Subscription IP","Subscription time",'
    '"Confirmation time","Confirmation IP","List status","Global status","List"'
)


def test_a_mailpoet_export_keeps_its_times_and_keeps_who_left_or_never_confirmed_off(
    tmp_path, news, fast
):
    rows = [
        '"ann@example.com","Ann","Lee","203.0.113.5","2022-05-01 10:00:00",'
        '"2022-05-01 10:05:00","203.0.113.5","subscribed","subscribed","Newsletter"',
        '"bob@example.org","Bob","Ray","","2022-05-01 10:00:00","","","unsubscribed",'
        '"unsubscribed","Newsletter"',
        # still on the list, but bounced everywhere
        '"cy@example.net","Cy","Ng","","2022-05-01 10:00:00","","","subscribed","bounced",'
        '"Newsletter"',
        # inactive: MailPoet stopped mailing someone who confirmed and then opened nothing
        '"di@example.com","Di","Ok","","2022-05-01 10:00:00","2022-05-02 10:00:00","",'
        '"subscribed","inactive","Newsletter"',
        '"ed@example.com","Ed \\"Eddie\\"","Ok","","2022-05-01 10:00:00","2022-05-02 10:00:00",'
        '"","subscribed","subscribed","Newsletter"',
        '"flo@example.com","Flo","Ma","","2022-05-01 10:00:00","","","unconfirmed",'
        '"unconfirmed","Newsletter"',
        # a row as a spreadsheet saves it again: quotes doubled
        '"ivy@example.com","Ivy ""Poison""","Lee","","2022-05-01 10:00:00","","","subscribed",'
        '"subscribed","Newsletter"',
        # a cell ending in a backslash, which MailPoet does not escape, runs into the next ones,
        # and a row a cell short: bad rows, not read with their statuses out of their columns
        '"hal@example.com","Hal\\","","","2022-05-01 10:00:00","","","unsubscribed",'
        '"unsubscribed","Newsletter"',
        '"jo@example.com","Jo","Ng","","2022-05-01 10:00:00","","","unsubscribed","Newsletter"',
    ]
    path = tmp_path / "MailPoet_export_a1b2c3.csv"
    path.write_bytes(("\ufeff" + MAILPOET_HEADER + "\n" + "\n".join(rows) + "\n").encode())
    imp = do_import(path, news, fast=fast)
    assert imp.exporter == "mailpoet"
    assert subscribed() == {
        "ann@example.com",
        "di@example.com",
        "ed@example.com",
        "ivy@example.com",
    }
    assert suppressed() == {
        email_hmac("bob@example.org"): "unsubscribed",
        email_hmac("cy@example.net"): "hard_bounce",
    }
    assert Contact.objects.get(email="ed@example.com").name == 'Ed "Eddie" Ok'
    assert Contact.objects.get(email="ivy@example.com").name == 'Ivy "Poison" Lee'
    assert [e.at for e in ConsentEvent.objects.filter(contact__email="ann@example.com")] == [
        datetime(2022, 5, 1, 10, tzinfo=UTC),
        datetime(2022, 5, 1, 10, 5, tzinfo=UTC),
    ]
    assert (imp.left_in_file, imp.bad_rows) == (2, 3)
    assert imp.bad_reasons == {
        "consent not confirmed": {"count": 1, "first_line": 7},
        "stray quote": {"count": 1, "first_line": 9},
        "cells out of line": {"count": 1, "first_line": 10},
    }
    assert_counts_add_up(imp)


# --- Substack -----------------------------------------------------------------------------------
# email_list.<publication>.csv: email, active_subscription (paid), expiry, plan, email_disabled
# (the reader turned the emails off), created_at, first_payment_at; ISO times in UTC.
SUBSTACK_HEADER = [
    "email", "active_subscription", "expiry", "plan", "email_disabled", "created_at",
    "first_payment_at",
]  # fmt: skip


@pytest.mark.usefixtures("name_optional")
def test_a_substack_export_keeps_the_sign_up_time_and_never_subscribes_who_turned_emails_off(
    tmp_path, news, fast
):
    path = csv_file(
        tmp_path,
        "email_list.mypub.csv",
        SUBSTACK_HEADER,
        [
            ["ann@example.com", "false", "", "", "false", "2024-01-15T10:00:00.000Z", ""],
            ["bob@example.org", "true", "2026-12-01T00:00:00.000Z", "monthly", "false",
             "2024-02-01T10:00:00.000Z", "2024-02-01T10:00:00.000Z"],
            ["cy@example.net", "false", "", "", "true", "2024-03-01T10:00:00.000Z", ""],
        ],
    )  # fmt: skip
    imp = do_import(path, news, fast=fast)
    assert imp.exporter == "substack"
    assert subscribed() == {"ann@example.com", "bob@example.org"}
    assert suppressed() == {email_hmac("cy@example.net"): "unsubscribed"}
    assert sorted(e.at for e in ConsentEvent.objects.all()) == [
        datetime(2024, 1, 15, 10, tzinfo=UTC),
        datetime(2024, 2, 1, 10, tzinfo=UTC),
    ]
    assert_counts_add_up(imp)


def test_an_updated_export_ends_the_subscription_here_of_whoever_left_since(tmp_path, news, fast):
    header = ["Email Address", "Name", "Status"]
    first = csv_file(
        tmp_path,
        "v1.csv",
        header,
        [["ann@example.com", "Ann", "Active"], ["bob@example.org", "Bob", "Active"]],
    )
    do_import(first, news, fast=fast)
    assert subscribed() == {"ann@example.com", "bob@example.org"}
    # A month later, the earlier tool's new export: Bob has unsubscribed there meanwhile.
    later = csv_file(
        tmp_path,
        "v2.csv",
        header,
        [["ann@example.com", "Ann", "Active"], ["bob@example.org", "Bob", "Unsubscribed"]],
    )
    imp = do_import(later, news, fast=fast)
    assert (imp.unchanged, imp.left_in_file) == (1, 1)
    assert_counts_add_up(imp)
    assert subscribed() == {"ann@example.com"}
    bob = Contact.objects.get(email="bob@example.org")
    assert bob.subscriptions.get().status == "unsubscribed"
    # The ledger says so: granted at the first import, withdrawn at the second, by the import.
    assert list(bob.consent_events.order_by("pk").values_list("action", "source")) == [
        ("granted", "import"),
        ("withdrawn", "import"),
    ]
    assert suppressed() == {email_hmac("bob@example.org"): "unsubscribed"}
    # The same file again: nothing more to end, nothing more in the ledger.
    again = do_import(later, news, fast=fast)
    assert (again.unchanged, again.left_in_file) == (1, 1)
    assert bob.consent_events.count() == 2


def test_a_dry_run_of_an_updated_export_ends_nothing(tmp_path, news):
    header = ["Email Address", "Name", "Status"]
    do_import(csv_file(tmp_path, "v1.csv", header, [["bob@example.org", "Bob", "Active"]]), news)
    later = csv_file(tmp_path, "v2.csv", header, [["bob@example.org", "Bob", "Unsubscribed"]])
    imp = do_import(later, news, dry_run=True)
    assert imp.left_in_file == 1
    assert subscribed() == {"bob@example.org"}
    assert not Suppression.objects.exists()


def test_people_a_file_says_never_subscribed_are_bad_rows_not_subscribers(tmp_path, news, fast):
    # Mailchimp's contacts export (All contacts > Export): an "Email Marketing" column with
    # Subscribed, Unsubscribed, Non-Subscribed (a shop's customers who never opted in), Cleaned.
    path = csv_file(
        tmp_path,
        "audience_export.csv",
        ["Email Address", "First Name", "Last Name", "Email Marketing"],
        [
            ["ann@example.com", "Ann", "Lee", "Subscribed"],
            ["bob@example.org", "Bob", "Ray", "Non-Subscribed"],
            ["cy@example.net", "Cy", "Ho", "Unsubscribed"],
            ["di@example.com", "Di", "Yu", "Cleaned"],
        ],
    )
    imp = do_import(path, news, fast=fast)
    assert subscribed() == {"ann@example.com"}
    assert suppressed() == {
        email_hmac("cy@example.net"): "unsubscribed",
        email_hmac("di@example.com"): "hard_bounce",
    }
    assert imp.bad_reasons == {"no consent": {"count": 1, "first_line": 3}}
    assert_counts_add_up(imp)


def test_mailchimps_file_of_non_subscribed_contacts_is_refused_not_subscribed(tmp_path, news):
    """Mailchimp's audience export holds a fourth file beside the subscribed, unsubscribed and
    cleaned ones: its non-subscribed contacts (a shop's customers, transactional contacts), with
    the same columns as the subscribed file.  Imported, they became subscribers."""
    from tidings.audience.imports import ImportFailed

    header = ["Email Address", "First Name", "MEMBER_RATING", "OPTIN_TIME", "LEID", "EUID"]
    path = csv_file(
        tmp_path,
        "nonsubscribed_members_export_1a2b3c.csv",
        header,
        [["ann@example.com", "Ann", "2", "", "1", "a"]],
    )
    with pytest.raises(ImportFailed, match="never opted in"):
        do_import(path, news)
    assert not Contact.objects.exists()
    # The subscribed file of the same export imports as ever.
    path = path.rename(tmp_path / "subscribed_members_export_1a2b3c.csv")
    assert do_import(path, news).created == 1


def test_a_yes_no_consent_column_keeps_who_said_no_off_the_list(tmp_path, news, fast):
    # Shopify's customers export ("Accepts Email Marketing"), a form tool's "Marketing consent",
    # a sheet's "Subscribed": a no is no consent, whatever the operator says of the rest.
    path = csv_file(
        tmp_path,
        "customers_export.csv",
        ["First Name", "Last Name", "Email", "Accepts Email Marketing"],
        [
            ["Ann", "Lee", "ann@example.com", "yes"],
            ["Bob", "Ray", "bob@example.org", "no"],
            ["Cy", "Ho", "cy@example.net", ""],
        ],
    )
    imp = do_import(path, news, fast=fast)
    assert subscribed() == {"ann@example.com", "cy@example.net"}
    assert not Suppression.objects.exists()  # they may still sign up themselves
    assert imp.bad_reasons == {"no consent": {"count": 1, "first_line": 3}}
    assert_counts_add_up(imp)

    path = csv_file(
        tmp_path, "sheet.csv", ["Email", "Name", "Subscribed"], [["di@example.com", "Di", "FALSE"]]
    )
    assert do_import(path, news, fast=fast).bad_rows == 1


@pytest.mark.parametrize("column", ["Accepts Email Marketing", "Unsubscribed"])
def test_a_yes_no_column_holding_neither_makes_the_row_bad_by_line_column_and_kind(
    tmp_path, news, fast, column
):
    """ "maybe", "2" or "Y?" is no answer: taken for yes it was consent nobody gave (or, in an
    unsubscribed column, a suppression nobody asked for).  The row is bad, and the report says
    which line and column and what kind of value, never the value."""
    from .import_helpers import report_rows

    stayed, left = ("yes", "no") if column.startswith("Accepts") else ("no", "yes")
    path = csv_file(
        tmp_path,
        "customers_export.csv",
        ["Email", "Name", column],
        [
            ["ann@example.com", "Ann", stayed],
            ["bob@example.org", "Bob", "maybe"],
            ["cy@example.net", "Cy", "2"],
            ["di@example.com", "Di", "Y?"],
            ["ed@example.com", "Ed", "2024-03-14 10:00"],  # a date: when they opted in / left
            ["fay@example.com", "Fay", left],
        ],
    )
    imp = do_import(path, news, fast=fast)

    assert subscribed() == (
        {"ann@example.com", "ed@example.com"} if stayed == "yes" else {"ann@example.com"}
    )
    assert imp.bad_reasons["unrecognised yes/no value"] == {"count": 3, "first_line": 3}
    reasons = {row[0]: row[1] for row in report_rows(imp)[1:]}
    assert reasons["3"] == f"{column} is not yes or no, nor a date (text)"
    assert reasons["4"] == f"{column} is not yes or no, nor a date (a number)"
    assert reasons["5"] == f"{column} is not yes or no, nor a date (text)"
    assert not any(v in r for r in reasons.values() for v in ("maybe", "Y?"))
    assert not Suppression.objects.filter(email_hmac__in=[email_hmac("bob@example.org")]).exists()
    assert_counts_add_up(imp)


@pytest.mark.parametrize("batch_rows", [None, 1])
def test_a_file_that_says_further_down_that_a_subscriber_left_does_not_subscribe_them(
    tmp_path, news, fast, batch_rows
):
    """The same person twice with conflicting statuses (a sheet merged from a tool's subscribed
    and unsubscribed files, a person on two of its lists): a file's order says nothing of which
    came last, and consent withdrawn anywhere in it is not imported as given — in one batch or
    across two, and the same on a re-run."""
    from .import_helpers import report_rows

    path = csv_file(
        tmp_path,
        "merged.csv",
        ["Email", "Name", "Status"],
        [
            ["ann@example.com", "Ann", "Active"],
            ["ANN@example.com", "Ann", "Unsubscribed"],
            ["bob@example.org", "Bob", "Unsubscribed"],
            ["bob@example.org", "Bob", "Active"],
        ],
    )
    for _run in range(2):
        imp = do_import(path, news, fast=fast, batch_rows=batch_rows)
        assert subscribed() == set()
        assert suppressed() == {
            email_hmac("ann@example.com"): "unsubscribed",
            email_hmac("bob@example.org"): "unsubscribed",
        }
        assert_counts_add_up(imp)
    if batch_rows is None:
        assert (imp.left_in_file, imp.duplicates) == (2, 2)
        reasons = {row[0]: row[1] for row in report_rows(imp)[1:]}
        assert reasons == {
            "2": "duplicate of line 3, which says they left",
            "5": "duplicate of line 4",
        }


def test_a_file_without_a_header_line_is_refused_as_such_not_for_a_missing_email_column(
    tmp_path, news
):
    """Sendy writes its exports without a header line ("Name","Email" rows only): the first
    person's row would be the columns' names, and the advice to map the email column would name
    their address.  The error says what is wrong, by column, without the address."""
    from tidings.audience.imports import ImportFailed

    path = tmp_path / "newsletter-active.csv"
    path.write_text('"Ann Smith","ann@example.com"\n"Bob","bob@example.org"', encoding="utf-8")
    with pytest.raises(ImportFailed) as failed:
        do_import(path, news)
    assert "no header line" in str(failed.value)
    assert "column 2" in str(failed.value)
    assert "ann@" not in str(failed.value)
    assert "Ann" not in str(failed.value)
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("newsletter-unsubscribed.csv", "unsubscribed"),
        ("newsletter-bounced.csv", "bounced"),
        ("newsletter-marked-as-spam.csv", "marked the mail as spam"),
        ("newsletter-unconfirmed.csv", "never confirmed"),
        ("Unsubscribed 2024.csv", "unsubscribed"),
    ],
)
def test_a_file_named_for_people_who_left_with_no_status_column_is_not_subscribed(
    tmp_path, news, name, said
):
    """Sendy's export of a list's unsubscribed (bounced, spam-reporting, unconfirmed) people is
    a file of names and addresses, its name the only word on who they are: imported as it is,
    everyone who said no was subscribed."""
    from tidings.audience.imports import ImportFailed

    path = csv_file(tmp_path, name, ["Name", "Email"], [["Ann Smith", "ann@example.com"]])
    with pytest.raises(ImportFailed) as failed:
        do_import(path, news)
    assert said in str(failed.value)
    assert not Contact.objects.exists()

    # With a status column, the rows say it themselves; another name imports as it always did.
    path = csv_file(
        tmp_path, name, ["Name", "Email", "Status"], [["Ann Smith", "ann@example.com", "Active"]]
    )
    assert do_import(path, news).created == 1
    path = csv_file(
        tmp_path, "newsletter-active.csv", ["Name", "Email"], [["Bob", "bob@example.org"]]
    )
    assert do_import(path, news).created == 1


@pytest.mark.parametrize(
    ("name", "said"),
    [
        # Mailchimp's own names for its unsubscribed and cleaned files, here without the
        # UNSUB_TIME / CLEAN_TIME column (deleted in a spreadsheet, say).
        ("unsubscribed_members_export_3f2a9c.csv", "unsubscribed"),
        ("cleaned_members_export_3f2a9c.csv", "were cleaned"),
        # A campaign report's files, a browser's copy of a download, a word inside a name.
        ("1234-spam.csv", "marked the mail as spam"),
        ("1234-bounces (1).csv", "bounced"),
        ("customers-bounced-back-list.csv", "bounced"),
        ("UnsubscribedMembers.csv", "unsubscribed"),
        ("newsletter opted out.csv", "unsubscribed"),
    ],
)
def test_a_left_word_anywhere_in_the_name_as_a_whole_word_refuses_the_file(
    tmp_path, news, name, said
):
    from tidings.audience.imports import ImportFailed

    path = csv_file(tmp_path, name, ["Name", "Email"], [["Ann Smith", "ann@example.com"]])
    with pytest.raises(ImportFailed) as failed:
        do_import(path, news)
    assert said in str(failed.value)
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    "name",
    [
        "contacts_cleaned.csv",  # a list tidied up: "cleaned" only as Mailchimp names its file
        "mailing-list-cleaned-2024.csv",
        "not-unsubscribed.csv",
        "not-unsubscribed-yet.csv",
        "contacts-without-bounces.csv",
        "bounces-removed.csv",
        "spam-free-list.csv",
        "resubscribed.csv",  # a word inside another is no word of the name
        "newsletter-still-subscribed.csv",
    ],
)
def test_a_name_that_only_looks_like_a_left_word_imports(tmp_path, news, name):
    """The refusal reads the name's whole words: a word turned round by the one beside it, or
    part of another word, says nothing of the people in the file."""
    path = csv_file(tmp_path, name, ["Name", "Email"], [["Ann Smith", "ann@example.com"]])
    imp = do_import(path, news)
    assert imp.created == 1
    assert subscribed() == {"ann@example.com"}
    assert_counts_add_up(imp)


@pytest.mark.parametrize(
    "header",
    [
        # MailPoet's export on a WordPress site in German, French or Spanish heads its columns
        # in the site's language, so it is not recognised as MailPoet's.
        ["E-Mail", "Vorname", "Anmeldezeit", "Bestätigungszeit", "Listenstatus", "Globaler Status"],
        [
            "E-mail",
            "Prénom",
            "Date d'inscription",
            "Date de confirmation",
            "Statut de la liste",
            "Statut global",
        ],
        [
            "Correo electrónico",
            "Nombre",
            "Fecha de suscripción",
            "Fecha de confirmación",
            "Estado de la lista",
            "Estado global",
        ],
    ],
)
def test_a_localised_export_keeps_who_left_off_the_list_and_its_consent_times(
    tmp_path, news, header
):
    path = csv_file(
        tmp_path,
        "subscribers.csv",
        header,
        [
            [
                "ann@example.com",
                "Ann",
                "2024-03-14 09:12:31",
                "2024-03-14 09:20:00",
                "subscribed",
                "subscribed",
            ],
            ["bob@example.org", "Bob", "2024-03-14 09:12:31", "", "unsubscribed", "subscribed"],
            ["cy@example.net", "Cy", "2024-03-14 09:12:31", "", "subscribed", "bounced"],
        ],
    )
    imp = do_import(path, news)
    assert subscribed() == {"ann@example.com"}
    assert suppressed() == {
        email_hmac("bob@example.org"): "unsubscribed",
        email_hmac("cy@example.net"): "hard_bounce",
    }
    # A sheet's times are in the installation's zone (Europe/London: GMT in March).
    times = ConsentEvent.objects.filter(contact__email="ann@example.com").order_by("at")
    assert [e.at for e in times] == [
        datetime(2024, 3, 14, 9, 12, 31, tzinfo=UTC),
        datetime(2024, 3, 14, 9, 20, tzinfo=UTC),
    ]
    assert_counts_add_up(imp)


@pytest.mark.parametrize("word", ["abgemeldet", "Désabonné", "dado de baja", "uitgeschreven"])
def test_a_status_word_in_another_language_keeps_who_left_off_the_list(tmp_path, news, word):
    path = csv_file(
        tmp_path,
        "liste.csv",
        ["E-Mail", "Vorname", "Status"],
        [["ann@example.com", "Ann", "aktiv"], ["bob@example.org", "Bob", word]],
    )
    imp = do_import(path, news)
    assert subscribed() == {"ann@example.com"}
    assert suppressed() == {email_hmac("bob@example.org"): "unsubscribed"}
    assert_counts_add_up(imp)
