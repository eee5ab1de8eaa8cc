"""Importing contacts from CSV: `tidings import contacts FILE --list L` and the background task."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import connection

from tidings.audience import imports
from tidings.audience.emails import email_hmac, email_key
from tidings.audience.imports import ImportConfig, ImportFailed, create_import, run_import
from tidings.audience.imports.parallel import lane_of
from tidings.audience.imports.rows import GoodRow
from tidings.audience.imports.writers import power_of_two_chunks
from tidings.audience.models import (
    ConsentEvent,
    Contact,
    Import,
    MailingList,
    Subscription,
    SuppressedDomain,
    Suppression,
)
from tidings.lib.models import AuditEntry

from .import_helpers import CONSENT, counts, do_import, report_rows, write


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


@pytest.fixture
def news(db):
    return MailingList.objects.create(name="News", topic="product news")


@pytest.fixture(params=["fast", "generic"])
def fast(request):
    """Both writers: PostgreSQL's set-based one (on SQLite both are the generic one)."""
    return request.param == "fast"


SIMPLE = "Email,Name,Company\r\nann@example.com,Ann Smith,Acme\r\nbob@example.org,Bob Jones,\r\n"


# --- reading files -----------------------------------------------------------------------------
@pytest.mark.parametrize("bom", [True, False], ids=["bom", "no-bom"])
def test_utf8_files_import_the_same_with_or_without_a_bom(tmp_path, news, bom):
    text = ("\ufeff" if bom else "") + "Email;Name\nzoë@example.com;Zoë Brontë\n"
    imp = do_import(write(tmp_path, text), news)
    assert imp.encoding == ("utf-8-sig" if bom else "utf-8")
    assert imp.created == 1
    contact = Contact.objects.get()
    assert (contact.email, contact.name) == ("zoë@example.com", "Zoë Brontë")


def test_a_file_that_is_not_utf8_is_read_as_windows_1252_and_says_so(tmp_path, news):
    path = write(tmp_path, "Email,Name\nrene@example.fr,René Müller – CEO\n", encoding="cp1252")
    imp = do_import(path, news)
    assert imp.encoding == "cp1252"
    assert Contact.objects.get().name == "René Müller – CEO"


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_comma_semicolon_and_tab_separated_files_are_recognised(tmp_path, news, delimiter):
    text = f'Email{delimiter}Name\nann@example.com{delimiter}"Smith, Ann; Dr"\n'
    imp = do_import(write(tmp_path, text), news)
    assert imp.delimiter == delimiter
    assert Contact.objects.get().name == "Smith, Ann; Dr"


def test_quoted_newlines_and_blank_lines_keep_physical_line_numbers_in_the_report(tmp_path, news):
    text = (
        "Email,Name,Job Title\n"  # line 1
        'ann@example.com,Ann,"Head of\nSomething\nLong"\n'  # lines 2-4
        "\n"  # line 5: blank, skipped
        "not-an-address,Bob,Clerk\n"  # line 6
        'carol@example.com,"Carol\nC",Boss\n'  # lines 7-8
        ",,\n"  # line 9: empty cells only, skipped
        'dave@,Dave,"Multi\nline"\n'  # lines 10-11
        "erin@example.com,,Clerk\n"  # line 12: no name
    )
    imp = do_import(write(tmp_path, text), news)
    assert (imp.rows_read, imp.created, imp.bad_rows) == (5, 2, 3)
    rows = report_rows(imp)
    assert rows[0] == ["line", "reason", "Email", "Name", "Job Title"]
    assert [r[0] for r in rows[1:]] == ["6", "10-11", "12"]
    assert rows[1][2:] == ["not-an-address", "Bob", "Clerk"]
    assert rows[2][2:] == ["dave@", "Dave", "Multi\nline"]
    assert rows[3][1] == "missing required field name"
    # A job title is one line (its text box cannot hold a break): the breaks become spaces.
    assert Contact.objects.get(email="ann@example.com").job_title == "Head of Something Long"
    assert imp.bad_reasons["invalid email address"] == {"count": 2, "first_line": 6}


def test_one_oversized_cell_makes_its_row_bad_and_the_import_goes_on(tmp_path, news, fast):
    text = (
        "Email,Name\nann@example.com,Ann\n"
        + 'bob@example.com,"'
        + "B" * 140_000
        + '"\ncarol@example.com,Carol\n'
    )
    imp = do_import(write(tmp_path, text), news, fast=fast, batch_rows=1)
    assert imp.status == Import.Status.FINISHED
    assert (imp.rows_read, imp.created, imp.bad_rows) == (3, 2, 1)
    assert sorted(Contact.objects.values_list("email", flat=True)) == [
        "ann@example.com",
        "carol@example.com",
    ]
    assert report_rows(imp)[1][:2] == ["3", "a cell longer than 131,072 characters (line 3)"]
    assert imp.bad_reasons == {"cell too long": {"count": 1, "first_line": 3}}


# --- columns -----------------------------------------------------------------------------------
EXPORTS = {
    "mailchimp": (
        '"Email Address","First Name","Last Name","Address","Phone Number",MEMBER_RATING,'
        "OPTIN_TIME,TAGS\n"
        'ann@example.com,Ann,Smith,"1 High St, Chester",01244 000000,2,2024-01-01 10:00:00,vip\n'
    ),
    "brevo": "EMAIL;FIRSTNAME;LASTNAME;SMS\nann@example.com;Ann;Smith;01244 000000\n",
    "hubspot": (
        "Record ID,First Name,Last Name,Email,Company Name,Job Title,Phone Number\n"
        "101,Ann,Smith,ann@example.com,Acme,Buyer,01244 000000\n"
    ),
    "listmonk": (
        "uuid,email,name,attributes,status\n"
        'f9e1,ann@example.com,Ann Smith,"{""company"": ""Acme"", ""city"": ""Chester""}",'
        "enabled\n"
    ),
}


@pytest.mark.parametrize("export", EXPORTS)
def test_exports_of_other_tools_map_their_columns_without_flags(tmp_path, news, export):
    imp = do_import(write(tmp_path, EXPORTS[export]), news)
    assert imp.created == 1, imp.bad_reasons
    contact = Contact.objects.get()
    assert contact.email == "ann@example.com"
    assert contact.name == "Ann Smith"
    assert contact.attributes == {}
    if export in ("mailchimp", "brevo", "hubspot"):
        assert contact.phone == "01244 000000"
    if export in ("hubspot", "listmonk"):
        assert contact.company == "Acme"
    if export == "hubspot":
        assert contact.job_title == "Buyer"


def test_columns_the_newsletter_purpose_does_not_allow_are_reported_and_never_stored(
    tmp_path, news
):
    text = (
        "Email,Name,Work Address,Birthday,Favourite colour,IP Address\n"
        "ann@example.com,Ann,1 High St,1990-01-01,green,192.0.2.1\n"
    )
    imp = do_import(write(tmp_path, text), news)
    assert imp.created == 1
    assert imp.ignored_columns == {
        "not allowed by the policy's newsletter purpose": ["Work Address", "IP Address"],
        "not a field tidings knows": ["Birthday", "Favourite colour"],
    }
    contact = Contact.objects.get()
    assert contact.work_address == ""
    assert contact.attributes == {}
    assert not hasattr(contact, "birthday")
    assert "192.0.2.1" not in json.dumps(list(Contact.objects.values()), default=str)
    assert imports.ignored_text(imp) == (
        "ignored columns: Work Address, IP Address — not allowed by the policy's newsletter "
        "purpose; Birthday, Favourite colour — not a field tidings knows"
    )


def test_listmonk_attribute_keys_outside_the_policy_are_reported(tmp_path, news):
    imp = do_import(write(tmp_path, EXPORTS["listmonk"]), news)
    assert any("attributes keys" in why for why in imp.ignored_columns)
    assert ["city"] in imp.ignored_columns.values()


def test_map_overrides_name_columns_and_ignores_them(tmp_path, news):
    text = "Correo,Nombre,Empresa\nann@example.com,Ann,Acme\n"
    imp = do_import(
        write(tmp_path, text), news, column_map={"Correo": "email", "Nombre": "name", "Empresa": ""}
    )
    assert imp.created == 1
    contact = Contact.objects.get()
    assert (contact.name, contact.company) == ("Ann", "")
    assert imp.ignored_columns == {"ignored by --map": ["Empresa"]}


@pytest.mark.parametrize(
    ("column_map", "message"),
    [
        ({"Nope": "email"}, "no column named"),
        ({"Email": "shoe_size"}, "not a field of the policy"),
        ({"Email": "work_address"}, "not allowed by the policy's newsletter purpose"),
    ],
)
def test_a_map_that_cannot_be_followed_fails_the_import(tmp_path, news, column_map, message):
    with pytest.raises(ImportFailed, match=message):
        do_import(write(tmp_path, SIMPLE), news, column_map=column_map)
    assert Import.objects.get().status == Import.Status.FAILED
    assert Contact.objects.count() == 0


def test_a_file_without_an_email_column_fails_with_one_line(tmp_path, news):
    with pytest.raises(ImportFailed, match="no email column") as exc:
        do_import(write(tmp_path, "Name,Company\nAnn,Acme\n"), news)
    assert "\n" not in str(exc.value)


def test_a_file_without_a_column_for_a_required_field_fails(tmp_path, news):
    with pytest.raises(ImportFailed, match="no column for name"):
        do_import(write(tmp_path, "Email\nann@example.com\n"), news)


# --- rows --------------------------------------------------------------------------------------
def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_are_imported(
    tmp_path, news, fast
):
    long_name = "x" * 201
    text = (
        "Email,Name,Phone\n"
        "ann@example.com,Ann,\n"  # 2
        "ann at example.com,Ann,\n"  # 3
        ",Nobody,\n"  # 4
        f"bob@example.com,{long_name},\n"  # 5
        "carol@example.com,,01244\n"  # 6
        "  Dave@Example.COM ,Dave,\n"  # 7: trimmed, domain lower-cased
        "'+erin@example.com,Erin,'+44 1244\n"  # 8: a spreadsheet's escapes are undone
    )
    imp = do_import(write(tmp_path, text), news, fast=fast)
    assert (imp.rows_read, imp.created, imp.bad_rows) == (7, 3, 4)
    assert sorted(Contact.objects.values_list("email", "phone")) == [
        ("+erin@example.com", "+44 1244"),
        ("Dave@example.com", ""),
        ("ann@example.com", ""),
    ]
    reasons = {int(row[0]): row[1] for row in report_rows(imp)[1:]}
    assert reasons[4] == "the email address is blank"
    assert reasons[5] == "name is over 200 characters"
    assert reasons[6] == "missing required field name"
    assert set(reasons) == {3, 4, 5, 6}


def test_backslashes_and_copy_escapes_in_values_arrive_unchanged(tmp_path, news, fast):
    # What the fast writer's COPY would read as escapes (\\, \\N, a tab, a line break) is
    # stored as written; only the tab and line break, which a one-line name cannot hold (the
    # contact page's text box would drop them on the next save), become one space each.
    name = "Ann\\Smith\tthe \\N\r\nSecond line"
    text = 'Email,Name,Company\n"ann@example.com","' + name + '","Zoë & Co \\\\ Ltd"\n'
    imp = do_import(write(tmp_path, text), news, fast=fast)
    assert imp.created == 1
    contact = Contact.objects.get()
    assert (contact.name, contact.company) == (
        "Ann\\Smith the \\N Second line",
        "Zoë & Co \\\\ Ltd",
    )


def test_a_line_break_typed_in_a_spreadsheet_cell_becomes_a_space(tmp_path, news, fast):
    # Excel's Alt+Enter in a company or name cell: stored on one line, the words kept apart
    # (not "Acme LtdLondon", which the contact page's one-line text box made of it on save).
    text = (
        "Email,First name,Last name,Company,Phone\n"
        '"ann@example.com","Ann\nMarie","Smith","Acme Ltd\r\nLondon","+44\t1244 000"\n'
    )
    imp = do_import(write(tmp_path, text), news, fast=fast)
    assert (imp.created, imp.bad_rows) == (1, 0)
    contact = Contact.objects.get()
    assert (contact.name, contact.company, contact.phone) == (
        "Ann Marie Smith",
        "Acme Ltd London",
        "+44 1244 000",
    )


def test_a_spreadsheet_escaped_value_is_unescaped(tmp_path, news):
    imp = do_import(write(tmp_path, "Email,Name,Phone\nann@example.com,Ann,'+44 1244 000\n"), news)
    assert imp.created == 1
    assert Contact.objects.get().phone == "+44 1244 000"


def test_report_cells_are_safe_to_open_in_a_spreadsheet(tmp_path, news):
    imp = do_import(write(tmp_path, 'Email,Name\n"=HYPERLINK(""x"")",Ann\n'), news)
    assert report_rows(imp)[1][2] == '\'=HYPERLINK("x")'


def test_a_reason_naming_a_hostile_column_is_safe_to_open_in_a_spreadsheet(tmp_path, news):
    # A column chosen as the opt-in time (on the check page, or --map) is named in the reason
    # of each row whose date is not one: the reason cell is as guarded as the file's own.
    column = '=HYPERLINK("http://example.com/x","Signed up")'
    text = (
        'Email,Name,"=HYPERLINK(""http://example.com/x"",""Signed up"")"\n'
        "ann@example.com,Ann,soon\n"
    )
    imp = do_import(write(tmp_path, text), news, column_map={column: "optin_time"})
    assert imp.bad_rows == 1
    reason = report_rows(imp)[1][1]
    assert reason == f"'{column} is not a date of consent (text)"


def test_suppressed_addresses_and_domains_are_skipped_and_reported_by_line_only(
    tmp_path, news, fast
):
    Suppression.objects.create(email_hmac=email_hmac("Gone@example.com"), reason="unsubscribed")
    SuppressedDomain.objects.create(domain="competitor.example")
    text = (
        "Email,Name\n"
        "ann@example.com,Ann\n"
        "GONE@example.com,Gone Person\n"  # the key is case-folded: still suppressed
        "spy@Competitor.example,Spy\n"
    )
    imp = do_import(write(tmp_path, text), news, fast=fast)
    assert (imp.created, imp.skipped_suppressed) == (1, 2)
    assert list(Contact.objects.values_list("email", flat=True)) == ["ann@example.com"]
    rows = report_rows(imp)[1:]
    assert [r[:2] for r in rows] == [
        ["3", "suppressed: may not be mailed"],
        ["4", "suppressed: may not be mailed"],
    ]
    assert all(len(r) == 2 for r in rows)  # no values: a suppressed address is not written out


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "asked-per-batch"])
def test_suppressions_are_found_whether_cached_or_asked_per_batch(tmp_path, news, fast, cached):
    Suppression.objects.create(email_hmac=email_hmac("bob@example.org"), reason="complaint")

    def suppress_ann_mid_import(imp):
        # Called once each batch is committed: ann is suppressed while the import runs.
        Suppression.objects.get_or_create(
            email_hmac=email_hmac("ann@example.com"), defaults={"reason": "unsubscribed"}
        )

    text = "Email,Name\ncarol@example.com,Carol\nbob@example.org,Bob\nann@example.com,Ann\n"
    imp = create_import(mailing_list=news, consent_source=CONSENT, original_filename="s.csv")
    config = ImportConfig(batch_rows=1, suppression_cache_limit=10 if cached else 0)
    imp = run_import(
        imp, write(tmp_path, text), fast=fast, config=config, progress=suppress_ann_mid_import
    )
    assert (imp.created, imp.skipped_suppressed) == (1, 2)
    assert list(Contact.objects.values_list("email", flat=True)) == ["carol@example.com"]


def test_duplicates_in_the_file_are_reported_as_duplicates_of_the_first_line(tmp_path, news, fast):
    text = (
        "Email,Name,Company\n"
        "ann@example.com,Ann,\n"  # 2
        "ANN@example.com,Ann Again,Acme\n"  # 3: same batch
        "bob@example.com,Bob,\n"  # 4
        "carol@example.com,Carol,\n"  # 5
        "Ann@Example.com,Ann Later,Acme\n"  # 6: a later batch
    )
    imp = do_import(write(tmp_path, text), news, fast=fast, batch_rows=2)  # and across batches
    assert (imp.created, imp.duplicates, imp.bad_rows) == (3, 2, 0)
    ann = Contact.objects.get(email="ann@example.com")
    assert (ann.name, ann.company) == ("Ann", "")  # the first row wins: not merged
    rows = report_rows(imp)[1:]
    assert rows == [
        ["3", "duplicate of line 2", "ANN@example.com", "Ann Again", "Acme"],
        ["6", "duplicate of line 2", "Ann@Example.com", "Ann Later", "Acme"],
    ]


# --- existing contacts, idempotence, consent ---------------------------------------------------
def test_re_running_the_same_file_changes_nothing(tmp_path, news, fast):
    path = write(tmp_path, SIMPLE + "carol@example.net,Carol,Initech\nbad,Bad,\n")
    first = do_import(path, news, fast=fast, batch_rows=2)
    assert (first.created, first.subscribed) == (3, 3)
    before = counts()
    again = do_import(path, news, fast=fast, batch_rows=2)
    assert counts() == before
    assert (again.created, again.updated, again.unchanged, again.subscribed) == (0, 0, 3, 0)
    assert again.bad_rows == 1


def test_existing_contacts_keep_their_data_and_only_blank_fields_are_filled(tmp_path, news, fast):
    Contact.objects.create(email="Ann@example.com", name="Ann Original", company="")
    text = "Email,Name,Company\nann@EXAMPLE.com,Ann From File,Acme\n"
    imp = do_import(write(tmp_path, text), news, fast=fast)
    assert (imp.created, imp.updated, imp.subscribed) == (0, 1, 1)
    ann = Contact.objects.get()
    assert (ann.email, ann.name, ann.company) == ("Ann@example.com", "Ann Original", "Acme")


def test_a_pending_subscription_is_confirmed_and_one_who_left_is_not_resubscribed(
    tmp_path, news, fast
):
    pending = Contact.objects.create(email="pending@example.com", name="P")
    left = Contact.objects.create(email="left@example.com", name="L")
    confirmed = Contact.objects.create(email="confirmed@example.com", name="C")
    Subscription.objects.create(contact=pending, mailing_list=news, status="pending")
    Subscription.objects.create(contact=left, mailing_list=news, status="unsubscribed")
    Subscription.objects.create(contact=confirmed, mailing_list=news, status="confirmed")
    text = "Email,Name\npending@example.com,P\nleft@example.com,L\nconfirmed@example.com,C\n"
    imp = do_import(write(tmp_path, text), news, fast=fast)
    assert (imp.updated, imp.unchanged, imp.skipped_unsubscribed, imp.subscribed) == (1, 1, 1, 1)
    statuses = dict(Subscription.objects.values_list("contact__email", "status"))
    assert statuses == {
        "pending@example.com": "confirmed",
        "left@example.com": "unsubscribed",
        "confirmed@example.com": "confirmed",
    }
    assert list(ConsentEvent.objects.values_list("contact", flat=True)) == [pending.pk]


def test_each_newly_subscribed_contact_gets_one_consent_event_from_the_import(tmp_path, news, fast):
    other = MailingList.objects.create(name="Events", topic="events and webinars")
    already = Contact.objects.create(email="bob@example.org", name="Bob")
    Subscription.objects.create(contact=already, mailing_list=other, status="confirmed")
    imp = do_import(write(tmp_path, SIMPLE), news, fast=fast)
    assert (imp.created, imp.updated, imp.subscribed) == (1, 1, 2)
    events = ConsentEvent.objects.select_related("wording", "contact")
    assert sorted(e.contact.email for e in events) == ["ann@example.com", "bob@example.org"]
    for event in events:
        assert event.action == ConsentEvent.Action.GRANTED
        assert event.source == ConsentEvent.Source.IMPORT
        assert event.source_ref == f"import:{imp.pk}"
        assert (event.purpose, event.channel) == ("newsletter", "email")
        assert (event.mailing_list, event.topic) == (news, "product news")
        assert (
            re.fullmatch(
                r"Imported from contacts\.csv, a CSV file, on \d{1,2} [A-Z][a-z]+ 20\d\d, by an "
                r"operator\. How these people consented, as the operator stated it: (.*)",
                event.wording.text,
            ).group(1)
            == CONSENT
        )
        assert event.ip_address is None
    subscription = Subscription.objects.get(contact__email="ann@example.com")
    assert subscription.status == Subscription.Status.CONFIRMED
    assert subscription.confirmed_at is not None


def test_without_a_stated_source_the_consent_wording_names_the_file(tmp_path, news):
    imp = do_import(write(tmp_path, SIMPLE, name="fair.csv"), news, consent_source="  ")
    assert "fair.csv" in imp.consent_source
    assert ConsentEvent.objects.first().wording.text.endswith(imp.consent_source)


def test_an_audit_entry_records_the_counts_and_no_personal_data(tmp_path, news, owner):
    imp = do_import(write(tmp_path, SIMPLE), news, operator=owner)
    entry = AuditEntry.objects.get(action="import.finished")
    assert (entry.actor, entry.object_id) == (owner, str(imp.pk))
    assert entry.details["created"] == 2
    assert entry.details["rows_read"] == 2
    assert "example" not in json.dumps(entry.details)


def test_a_dry_run_counts_everything_and_changes_nothing(tmp_path, news, fast):
    before = counts()
    imp = do_import(write(tmp_path, SIMPLE + "bad,Bad,\n"), news, fast=fast, dry_run=True)
    assert (imp.created, imp.subscribed, imp.bad_rows) == (2, 2, 1)
    assert counts() == before
    assert Import.objects.count() == 0
    assert AuditEntry.objects.count() == 0
    assert imp.report_file == ""


# --- two writers (PostgreSQL) -------------------------------------------------------------------
TWO_WRITERS = ImportConfig(batch_rows=3, writers=2, parallel_min_bytes=0)


@pytest.fixture
def two_writers(transactional_db, caplog):
    """Big-file mode on a small file: two connections, so nothing may sit in a test transaction.
    Yields a function that says how many connections the last import wrote with (from its log
    line)."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL's writer writes with two connections")
    caplog.set_level(logging.INFO, logger="tidings.audience.imports")

    def connections_used() -> list[str]:
        return [
            r.getMessage().rsplit("written by ", 1)[1]
            for r in caplog.records
            if "written by" in r.getMessage()
        ]

    return connections_used


MIXED = (
    "Email,Name,Company\n"
    "ann@example.com,Ann,\n"  # 2
    "bob@example.com,Bob,\n"  # 3
    "ANN@example.com,Ann Again,Acme\n"  # 4: duplicate in the same batch
    "carol@example.com,Carol,\n"  # 5
    "bad,Bad,\n"  # 6
    "gone@example.com,Gone,\n"  # 7: suppressed
    "pending@example.com,P,\n"  # 8: pending, confirmed
    "left@example.com,L,\n"  # 9: left the list
    "Ann@Example.com,Ann Later,Acme\n"  # 10: duplicate in a later batch
    "dave@example.com,,\n"  # 11: no name
    "erin@example.com,Erin,Initech\n"  # 12
    "frank@example.com,Frank,\n"  # 13
)


def test_two_writers_import_as_one_does_and_keep_the_import_row_exact(tmp_path, two_writers):
    news = MailingList.objects.create(name="News", topic="product news")
    Suppression.objects.create(email_hmac=email_hmac("gone@example.com"), reason="complaint")
    for email, status in (("pending@example.com", "pending"), ("left@example.com", "unsubscribed")):
        contact = Contact.objects.create(email=email, name=email[0].upper())
        Subscription.objects.create(contact=contact, mailing_list=news, status=status)
    committed: list[dict[str, int]] = []

    def progress(imp):
        row = Import.objects.values(*imports.COUNTERS, "bad_reasons").get(pk=imp.pk)
        committed.append(row)

    path = write(tmp_path, MIXED)
    imp = create_import(mailing_list=news, consent_source=CONSENT, original_filename="m.csv")
    imp = run_import(imp, path, progress=progress, config=TWO_WRITERS)
    assert two_writers() == ["2 connection(s)"]
    expected = {
        "rows_read": 12,
        "created": 5,
        "updated": 1,
        "unchanged": 0,
        "subscribed": 6,
        "skipped_suppressed": 1,
        "skipped_unsubscribed": 1,
        "left_in_file": 0,
        "duplicates": 2,
        "bad_rows": 2,
    }
    assert {name: getattr(imp, name) for name in imports.COUNTERS} == expected
    # Each writer added its own parts' counts to the row in their transactions: once every part
    # is in, the row holds the same sums, bad-row reasons merged.
    reasons = {
        "invalid email address": {"count": 1, "first_line": 6},
        "missing name": {"count": 1, "first_line": 11},
    }
    assert committed[-1] == {**expected, "bad_reasons": reasons}
    assert imp.bad_reasons == reasons
    created = [c["created"] for c in committed]
    assert created == sorted(created)
    assert [r[:2] for r in report_rows(imp)[1:]] == [
        ["4", "duplicate of line 2"],
        ["6", "An email address must have an @-sign."],
        ["7", "suppressed: may not be mailed"],
        ["10", "duplicate of line 2"],
        ["11", "missing required field name"],
    ]
    ann = Contact.objects.get(email="ann@example.com")
    assert (ann.name, ann.company) == ("Ann", "")  # the first row wins
    assert ConsentEvent.objects.filter(source_ref=f"import:{imp.pk}").count() == 6
    assert Subscription.objects.filter(mailing_list=news, status="confirmed").count() == 6

    before = counts()
    again = run_import(
        create_import(mailing_list=news, consent_source=CONSENT, original_filename="m.csv"),
        path,
        config=TWO_WRITERS,
    )
    assert counts() == before
    assert (again.created, again.updated, again.unchanged, again.duplicates) == (0, 0, 6, 2)


def test_two_writers_report_an_oversized_cell_and_write_the_rest(tmp_path, two_writers):
    news = MailingList.objects.create(name="News", topic="product news")
    rows = "".join(f"p{i}@example.com,P{i}\n" for i in range(7))
    path = write(tmp_path, f'Email,Name\n{rows}bob@example.com,"' + "B" * 140_000 + '"\nz@x.io,Z\n')
    imp = run_import(
        create_import(mailing_list=news, original_filename="x.csv"), path, config=TWO_WRITERS
    )
    assert two_writers() == ["2 connection(s)"]
    assert (imp.status, imp.created, imp.bad_rows, imp.rows_read) == ("finished", 8, 1, 9)
    assert Contact.objects.count() == 8
    assert [r[0] for r in report_rows(imp)[1:]] == ["9"]


def test_addresses_the_unique_key_takes_for_the_same_go_to_the_same_writer():
    def lane(email):
        row = GoodRow(2, email, email_key(email), (), None)
        return [lane_of(row, lanes) for lanes in (2, 3, 5, 7)]

    # The unique index is on email_key (casefold), whatever SQL's lower() would say.
    assert lane("ZOË@example.com") == lane("zoë@example.com")
    assert lane("Straße@example.com") == lane("strasse@example.com")


# --- the background task, the record, the files ------------------------------------------------
def test_the_task_runs_an_uploaded_import(
    tmp_path, news, owner, django_capture_on_commit_callbacks
):
    from tidings.audience.tasks import import_contacts

    data = (SIMPLE + "wrong,W,\n").encode()
    with django_capture_on_commit_callbacks() as callbacks:
        imp = imports.start_import(
            mailing_list=news,
            consent_source=CONSENT,
            operator=owner,
            original_filename="fair.csv",
            upload=[data[:10], data[10:]],
        )
    assert imp.status == Import.Status.QUEUED
    assert imp.stored_path.read_bytes() == data
    assert imp.stored_path.stat().st_mode & 0o777 == 0o600
    assert len(callbacks) == 1  # the task is enqueued once the record is committed

    assert import_contacts.call(imp.pk) == Import.Status.FINISHED
    imp.refresh_from_db()
    assert imp.status == Import.Status.FINISHED
    assert (imp.rows_read, imp.created, imp.bad_rows) == (3, 2, 1)
    assert imp.processed_bytes == imp.total_bytes == len(data)
    assert imp.started_at <= imp.finished_at
    assert import_contacts.call(imp.pk) == Import.Status.FINISHED  # a repeated task: no re-run
    assert Contact.objects.count() == 2


def test_progress_is_kept_on_the_import_batch_by_batch_as_it_is_committed(tmp_path, news, fast):
    seen: list[tuple[int, int, int]] = []

    def progress(imp):
        row = Import.objects.get(pk=imp.pk)  # what another process (the page) would see
        seen.append((row.rows_read, row.created, row.processed_bytes))

    path = write(tmp_path, SIMPLE + "wrong,W,\ncarol@example.net,Carol,\n")
    imp = do_import(path, news, fast=fast, batch_rows=1, progress=progress)
    assert [(rows, created) for rows, created, _ in seen] == [(1, 1), (2, 2), (4, 3), (4, 3)]
    done = [processed for _, _, processed in seen]
    assert done == sorted(done) and done[-1] == imp.total_bytes == path.stat().st_size


def test_a_task_whose_worker_died_runs_the_import_again_and_carries_its_counts(news):
    """The dead run had committed one new contact (its counts commit with its rows): the run
    again finds it and counts it as the dead run did, new, not unchanged (imports.lease)."""
    from tidings.audience.tasks import import_contacts

    imp = create_import(mailing_list=news, upload=[SIMPLE.encode()])
    run_import(imp)
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.RUNNING, created=1, rows_read=1)
    before = counts()
    assert import_contacts.call(imp.pk) == Import.Status.FINISHED
    imp.refresh_from_db()
    assert (imp.rows_read, imp.created, imp.unchanged) == (2, 1, 1)
    assert counts() == before


def test_the_task_marks_an_import_whose_file_is_unusable_as_failed(news):
    from tidings.audience.tasks import import_contacts

    imp = create_import(mailing_list=news, upload=[b"Name\nAnn\n"])
    with pytest.raises(ImportFailed):
        import_contacts.call(imp.pk)
    imp.refresh_from_db()
    assert imp.status == Import.Status.FAILED
    assert imp.error.startswith("no email column")
    assert AuditEntry.objects.filter(action="import.failed").count() == 1


def test_deleting_an_import_deletes_its_upload_and_report(
    tmp_path, news, django_capture_on_commit_callbacks
):
    imp = create_import(mailing_list=news, upload=[b"Email,Name\nbad,Bad\nann@example.com,A\n"])
    run_import(imp)
    upload, report = imp.stored_path, imp.report_path
    assert upload.exists()
    assert report.exists()
    assert report.stat().st_mode & 0o777 == 0o600
    with django_capture_on_commit_callbacks(execute=True):
        imp.delete()
    assert not upload.exists()
    assert not report.exists()


def test_an_import_without_bad_rows_has_no_report(tmp_path, news):
    imp = do_import(write(tmp_path, SIMPLE), news)
    assert imp.report_file == ""


# --- the command -------------------------------------------------------------------------------
def test_the_command_imports_and_prints_a_summary(tmp_path, news, capsys):
    path = write(tmp_path, "Email,Name,Birthday\nann@example.com,Ann,1 May\nnope,N,\n")
    call_command(
        "import", "contacts", str(path), "--list", "News", "--consent-source", CONSENT,
        verbosity=0,
    )  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Imported 2 rows into 'News'")
    assert "1 created" in out[0]
    assert "1 bad rows (invalid email address 1, first at line 3)" in out[0]
    assert out[1] == "ignored columns: Birthday — not a field tidings knows"
    assert out[2].startswith("bad rows report (personal data, for you only): ")
    assert Contact.objects.get().email == "ann@example.com"


def test_the_command_takes_column_maps_and_does_dry_runs(tmp_path, news, capsys):
    path = write(tmp_path, "Correo,Nombre\nann@example.com,Ann\n")
    call_command(
        "import", "contacts", str(path), "--list", "News", "--map", "Correo=email",
        "--map", "Nombre=name", "--dry-run", verbosity=0,
    )  # fmt: skip
    assert capsys.readouterr().out.startswith("Dry run: would import 1 rows into 'News'")
    assert Contact.objects.count() == 0


@pytest.mark.parametrize(
    ("content", "list_name", "message"),
    [
        (None, "News", "tidings import: no such file: "),
        ("Email,Name\n", "Nope", "tidings import: no list named 'Nope' (lists: News)"),
        ("Name\nAnn\n", "News", "tidings import: no email column: "),
        ("Email,Name\n\n", "News", "tidings import: the file has a header but no rows"),
    ],
    ids=["missing-file", "unknown-list", "no-email-column", "header-only"],
)
def test_the_command_exits_non_zero_with_a_one_line_error(
    transactional_db, tmp_path, capsys, content, list_name, message
):
    from tidings.cli import main

    MailingList.objects.create(name="News", topic="product news")
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_text(content)
    assert main(["import", "contacts", str(path), "--list", list_name, "-v0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(message)


def test_the_tidings_executable_reports_a_missing_file_in_one_line(tmp_path):
    env_dir = tmp_path / "var"
    result = subprocess.run(
        [sys.executable, "-m", "tidings", "import", "contacts", "nope.csv", "--list", "News"],
        capture_output=True,
        text=True,
        env={"TIDINGS_DATA_DIR": str(env_dir), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "tidings import: no such file: nope.csv"


def test_traceback_asked_for_gives_the_traceback(transactional_db, tmp_path):
    """The one-line error is for people; --traceback (for a bug report) still shows where."""
    from django.core.management.base import CommandError

    from tidings.cli import main

    with pytest.raises(CommandError, match="no such file"):
        main(["import", "--traceback", "contacts", str(tmp_path / "x.csv"), "--list", "News"])


def test_the_generic_writer_chunks_by_powers_of_two():
    chunks = list(power_of_two_chunks(list(range(1000)), 9, 100))
    assert [x for chunk in chunks for x in chunk] == list(range(1000))
    assert {len(c) for c in chunks} <= {8, 4, 2, 1}
