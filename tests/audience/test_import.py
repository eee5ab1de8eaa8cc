"""Importing contacts from CSV: `tidings import contacts FILE --list L` and the background task."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from tidings.audience import importer
from tidings.audience.emails import email_hmac
from tidings.audience.importer import ImportFailed, create_import, run_import
from tidings.audience.models import (
    ConsentEvent,
    ConsentWording,
    Contact,
    Import,
    MailingList,
    Subscription,
    SuppressedDomain,
    Suppression,
)
from tidings.rights.models import AuditEntry

CONSENT = "Signed up at our stand at the Chester trade fair, 2026 (paper forms kept in the office)."


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


def write(tmp_path: Path, text: str, name: str = "contacts.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def do_import(path: Path, mailing_list: MailingList, *, fast: bool = True, **kwargs) -> Import:
    kwargs.setdefault("consent_source", CONSENT)
    imp = create_import(mailing_list=mailing_list, original_filename=path.name, **kwargs)
    return run_import(imp, path, fast=fast)


def report_rows(imp: Import) -> list[list[str]]:
    assert imp.report_path is not None
    with imp.report_path.open(encoding="utf-8-sig", newline="") as fp:
        return list(csv.reader(fp))


def counts() -> dict[str, int]:
    return {
        "contacts": Contact.objects.count(),
        "subscriptions": Subscription.objects.count(),
        "events": ConsentEvent.objects.count(),
        "wordings": ConsentWording.objects.count(),
    }


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
    assert [r[0] for r in rows[1:]] == ["6", "10", "12"]
    assert rows[1][2:] == ["not-an-address", "Bob", "Clerk"]
    assert rows[2][2:] == ["dave@", "Dave", "Multi\nline"]
    assert rows[3][1] == "missing required field name"
    assert Contact.objects.get(email="ann@example.com").job_title == "Head of\nSomething\nLong"
    assert imp.bad_reasons["invalid email address"] == {"count": 2, "first_line": 6}


def test_a_file_the_csv_reader_cannot_read_fails_with_the_line_and_keeps_what_was_imported(
    tmp_path, news, monkeypatch
):
    monkeypatch.setattr(importer, "BATCH_ROWS", 1)
    text = 'Email,Name\nann@example.com,Ann\nbob@example.com,"' + "B" * 140_000 + '"\n'
    with pytest.raises(ImportFailed, match=r"^line 3: unreadable CSV \(field larger"):
        do_import(write(tmp_path, text), news)
    imp = Import.objects.get()
    assert (imp.status, imp.created) == (Import.Status.FAILED, 1)
    assert list(Contact.objects.values_list("email", flat=True)) == ["ann@example.com"]


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
    assert importer.ignored_text(imp) == (
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


def test_tabs_backslashes_and_line_breaks_in_values_arrive_unchanged(tmp_path, news, fast):
    name = "Ann\\Smith\tthe \\N\r\nSecond line"
    text = 'Email,Name,Company\n"ann@example.com","' + name + '","Zoë & Co \\\\ Ltd"\n'
    imp = do_import(write(tmp_path, text), news, fast=fast)
    assert imp.created == 1
    contact = Contact.objects.get()
    assert (contact.name, contact.company) == (name.strip(), "Zoë & Co \\\\ Ltd")


def test_a_spreadsheet_escaped_value_is_unescaped(tmp_path, news):
    imp = do_import(write(tmp_path, "Email,Name,Phone\nann@example.com,Ann,'+44 1244 000\n"), news)
    assert imp.created == 1
    assert Contact.objects.get().phone == "+44 1244 000"


def test_report_cells_are_safe_to_open_in_a_spreadsheet(tmp_path, news):
    imp = do_import(write(tmp_path, 'Email,Name\n"=HYPERLINK(""x"")",Ann\n'), news)
    assert report_rows(imp)[1][2] == '\'=HYPERLINK("x")'


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
def test_suppressions_are_found_whether_cached_or_asked_per_batch(
    tmp_path, news, fast, cached, monkeypatch
):
    monkeypatch.setattr(importer, "BATCH_ROWS", 1)
    monkeypatch.setattr(importer.SuppressionList, "CACHE_LIMIT", 10 if cached else 0)
    Suppression.objects.create(email_hmac=email_hmac("bob@example.org"), reason="complaint")
    original = importer.Run._write_rows

    def suppress_ann_mid_import(run, batch):
        original(run, batch)  # ann is suppressed after the first batch, while the import runs
        Suppression.objects.get_or_create(
            email_hmac=email_hmac("ann@example.com"), defaults={"reason": "unsubscribed"}
        )

    monkeypatch.setattr(importer.Run, "_write_rows", suppress_ann_mid_import)
    text = "Email,Name\ncarol@example.com,Carol\nbob@example.org,Bob\nann@example.com,Ann\n"
    imp = do_import(write(tmp_path, text), news, fast=fast)
    assert (imp.created, imp.skipped_suppressed) == (1, 2)


def test_duplicates_in_the_file_are_reported_as_duplicates_of_the_first_line(
    tmp_path, news, fast, monkeypatch
):
    monkeypatch.setattr(importer, "BATCH_ROWS", 2)  # and across batches
    text = (
        "Email,Name,Company\n"
        "ann@example.com,Ann,\n"  # 2
        "ANN@example.com,Ann Again,Acme\n"  # 3: same batch
        "bob@example.com,Bob,\n"  # 4
        "carol@example.com,Carol,\n"  # 5
        "Ann@Example.com,Ann Later,Acme\n"  # 6: a later batch
    )
    imp = do_import(write(tmp_path, text), news, fast=fast)
    assert (imp.created, imp.duplicates, imp.bad_rows) == (3, 2, 0)
    ann = Contact.objects.get(email="ann@example.com")
    assert (ann.name, ann.company) == ("Ann", "")  # the first row wins: not merged
    rows = report_rows(imp)[1:]
    assert rows == [
        ["3", "duplicate of line 2", "ANN@example.com", "Ann Again", "Acme"],
        ["6", "duplicate of line 2", "Ann@Example.com", "Ann Later", "Acme"],
    ]


# --- existing contacts, idempotence, consent ---------------------------------------------------
def test_re_running_the_same_file_changes_nothing(tmp_path, news, fast, monkeypatch):
    monkeypatch.setattr(importer, "BATCH_ROWS", 2)
    path = write(tmp_path, SIMPLE + "carol@example.net,Carol,Initech\nbad,Bad,\n")
    first = do_import(path, news, fast=fast)
    assert (first.created, first.subscribed) == (3, 3)
    before = counts()
    again = do_import(path, news, fast=fast)
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
        assert event.wording.text == CONSENT
        assert event.ip_address is None
    subscription = Subscription.objects.get(contact__email="ann@example.com")
    assert subscription.status == Subscription.Status.CONFIRMED
    assert subscription.confirmed_at is not None


def test_without_a_stated_source_the_consent_wording_names_the_file(tmp_path, news):
    imp = do_import(write(tmp_path, SIMPLE, name="fair.csv"), news, consent_source="  ")
    assert "fair.csv" in imp.consent_source
    assert ConsentEvent.objects.first().wording.text == imp.consent_source


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
@pytest.fixture
def two_writers(transactional_db, monkeypatch):
    """Big-file mode on a small file: two connections, so nothing may sit in a test transaction."""
    if connection.vendor != "postgresql":
        pytest.skip("only PostgreSQL's writer writes with two connections")
    monkeypatch.setattr(importer, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(importer, "BATCH_ROWS", 3)
    started = []
    original = importer.ParallelWrite.write

    def write(self, batches):
        started.append(len(self.lanes))
        original(self, batches)

    monkeypatch.setattr(importer.ParallelWrite, "write", write)
    return started


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
        row = Import.objects.values(*importer.COUNTERS, "bad_reasons").get(pk=imp.pk)
        committed.append(row)

    path = write(tmp_path, MIXED)
    imp = create_import(mailing_list=news, consent_source=CONSENT, original_filename="m.csv")
    imp = run_import(imp, path, progress=progress)
    assert two_writers == [2]
    expected = {
        "rows_read": 12,
        "created": 5,
        "updated": 1,
        "unchanged": 0,
        "subscribed": 6,
        "skipped_suppressed": 1,
        "skipped_unsubscribed": 1,
        "duplicates": 2,
        "bad_rows": 2,
    }
    assert {name: getattr(imp, name) for name in importer.COUNTERS} == expected
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
        create_import(mailing_list=news, consent_source=CONSENT, original_filename="m.csv"), path
    )
    assert counts() == before
    assert (again.created, again.updated, again.unchanged, again.duplicates) == (0, 0, 6, 2)


def test_two_writers_keep_what_was_read_before_an_unreadable_line(tmp_path, two_writers):
    news = MailingList.objects.create(name="News", topic="product news")
    rows = "".join(f"p{i}@example.com,P{i}\n" for i in range(7))
    path = write(tmp_path, f'Email,Name\n{rows}bob@example.com,"' + "B" * 140_000 + '"\n')
    with pytest.raises(ImportFailed, match=r"^line 9: unreadable CSV"):
        run_import(create_import(mailing_list=news, original_filename="x.csv"), path)
    imp = Import.objects.get()  # the batches complete before it were written, as in turn
    assert (imp.status, imp.created, imp.rows_read) == (Import.Status.FAILED, 6, 6)
    assert Contact.objects.count() == 6


def test_addresses_postgresql_takes_for_the_same_go_to_the_same_writer():
    def lane(email):
        row = importer.GoodRow(2, email, email.casefold(), (), None)
        return [importer.lane_of(row, lanes) for lanes in (2, 3, 5, 7)]

    # lower() in PostgreSQL makes U+0130 (İ) an ASCII i, and the Kelvin sign a k; casefold not.
    assert lane("\u0130nes@example.com") == lane("ines@example.com")
    assert lane("\u212ay@example.com") == lane("ky@example.com")


# --- the background task, the record, the files ------------------------------------------------
def test_the_task_runs_an_uploaded_import_and_keeps_progress_on_the_import(
    tmp_path, news, owner, monkeypatch, django_capture_on_commit_callbacks
):
    from tidings.audience.tasks import import_contacts

    monkeypatch.setattr(importer, "BATCH_ROWS", 1)
    seen: list[tuple[int, int]] = []
    original = importer._save_progress

    def save_progress(imp, batch, run):
        original(imp, batch, run)
        row = Import.objects.get(pk=imp.pk)
        seen.append((row.rows_read, row.processed_bytes))

    monkeypatch.setattr(importer, "_save_progress", save_progress)
    data = (SIMPLE + "wrong,W,\n").encode()
    with django_capture_on_commit_callbacks() as callbacks:
        imp = importer.start_import(
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
    assert [rows for rows, _ in seen] == [1, 2, 3]  # one batch per good row, then the rest
    assert import_contacts.call(imp.pk) == Import.Status.FINISHED  # a repeated task: no re-run
    assert Contact.objects.count() == 2


def test_a_task_whose_worker_died_runs_the_import_again_and_counts_afresh(news):
    from tidings.audience.tasks import import_contacts

    imp = create_import(mailing_list=news, upload=[SIMPLE.encode()])
    run_import(imp)
    Import.objects.filter(pk=imp.pk).update(status=Import.Status.RUNNING, created=1, rows_read=1)
    before = counts()
    assert import_contacts.call(imp.pk) == Import.Status.FINISHED
    imp.refresh_from_db()
    assert (imp.rows_read, imp.created, imp.unchanged) == (2, 0, 2)
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
        (None, "News", "CommandError: no such file: "),
        ("Email,Name\n", "Nope", "CommandError: no list named 'Nope' (lists: News)"),
        ("Name\nAnn\n", "News", "CommandError: no email column: "),
    ],
    ids=["missing-file", "unknown-list", "no-email-column"],
)
def test_the_command_exits_non_zero_with_a_one_line_error(
    transactional_db, tmp_path, capsys, content, list_name, message
):
    from tidings.cli import main

    MailingList.objects.create(name="News", topic="product news")
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exc:
        main(["import", "contacts", str(path), "--list", list_name, "-v0"])
    assert exc.value.code == 1
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
    assert result.stderr.strip() == "CommandError: no such file: nope.csv"


def test_the_generic_writer_chunks_by_powers_of_two(news):
    imp = create_import(mailing_list=news)
    writer = importer.Writer(imp, news, wording_id=0)
    writer.max_params = 100
    sizes = [len(c) for c in writer._chunks(list(range(1000)), 9)]
    assert sum(sizes) == 1000
    assert set(sizes) <= {8, 4, 2, 1}
    assert connection.vendor in ("sqlite", "postgresql")
