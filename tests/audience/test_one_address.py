"""One mailbox is one contact, by one rule (emails.email_key), on SQLite as on PostgreSQL."""

from __future__ import annotations

import importlib

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from tests.operators import make_operator
from tidings.audience.actions import do_create_contact
from tidings.audience.emails import email_key
from tidings.audience.models import Contact, Suppression
from tidings.audience.operator import do_update_contact
from tidings.audience.personal_data import _blank
from tidings.audience.suppression import is_suppressed
from tidings.ops.checks.database import check_contacts_kept_apart
from tidings.rights.actions import do_erase_contact

from .import_helpers import do_import, report_rows, write


def create(email: str, name: str = "Someone") -> tuple[Contact, bool]:
    return do_create_contact({"name": name, "email": email}, purpose="newsletter")


# --- one rule ---------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("zoë@example.com", "ZOË@example.com"),  # SQLite's lower() folds ASCII only
        ("Straße@example.com", "strasse@example.com"),  # lower() keeps ß; casefold makes ss
        ("ΣΊΣΥΦΟΣ@example.com", "σίσυφος@example.com"),
    ],
)
def test_two_spellings_of_one_mailbox_are_one_contact(first, second):
    contact, created = create(first)
    again, created_again = create(second)

    assert created and not created_again
    assert again == contact
    assert Contact.objects.count() == 1
    assert Contact.objects.with_email(second).get() == contact
    assert contact.email_key == email_key(contact.email)


@pytest.mark.django_db
def test_a_rectified_address_gets_its_key_and_cannot_take_another_contacts(owner):
    zoe, _ = create("zoë@example.com")
    ada, _ = create("ada@example.com")

    do_update_contact(ada, {"email": "Ada.King@example.com"}, actor=owner)
    assert Contact.objects.with_email("ADA.KING@example.com").get() == ada
    with transaction.atomic(), pytest.raises(IntegrityError):
        do_update_contact(ada, {"email": "ZOË@example.com"}, actor=owner)
    zoe.refresh_from_db()
    assert zoe.email_key == "zoë@example.com"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fast", [True, False])
def test_an_import_takes_two_spellings_of_one_mailbox_for_one_contact(tmp_path, settings, fast):
    from tidings.audience.models import MailingList

    settings.DATA_DIR = tmp_path / "data"
    news = MailingList.objects.create(name="Product news", topic="product news")
    existing, _ = create("straße@example.com")
    path = write(
        tmp_path,
        "email,name\nzoë@example.com,Zoë\nZOË@example.com,Zoë Again\nSTRASSE@example.com,S\n",
    )

    imp = do_import(path, news, fast=fast, batch_rows=2)

    assert (imp.created, imp.duplicates) == (1, 1)
    assert Contact.objects.count() == 2
    assert Contact.objects.with_email("Zoë@example.com").get().name == "Zoë"
    assert existing.subscriptions.get().mailing_list == news
    reasons = {r[0]: r[1] for r in report_rows(imp)[1:]}
    assert reasons == {"3": "duplicate of line 2"}


@pytest.mark.django_db(transaction=True)
def test_an_import_refuses_a_local_part_over_64_octets_by_line_and_reason(tmp_path, settings):
    from tidings.audience.models import MailingList

    settings.DATA_DIR = tmp_path / "data"
    news = MailingList.objects.create(name="Product news", topic="product news")
    long_local = "ö" * 33  # 33 characters, 66 octets
    path = write(tmp_path, f"email,name\n{long_local}@example.com,Long\njörg@bücher.example,J\n")

    imp = do_import(path, news)

    assert imp.created == 1
    assert Contact.objects.get().email == "jörg@bücher.example"
    (row,) = report_rows(imp)[1:]
    assert row[0] == "2"
    assert "66 bytes" in row[1] and long_local not in row[1]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    [
        'email = "ZOË@example.com"',
        'email in ("ZOË@example.com", "nobody@example.com")',
        'email ^= "ZOË@"',
    ],
)
def test_a_segment_finds_an_address_by_its_key(text):
    from tidings.audience.segments import segment_queryset

    zoe, _ = create("zoë@example.com")
    create("ada@example.com")

    assert list(segment_queryset(text)) == [zoe]


# --- the upgrade ------------------------------------------------------------------------------
BEFORE = ("audience", "0010_engagement_facts")
AFTER = ("audience", "0011_contact_email_key")


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_keys_every_contact_and_keeps_colliding_ones_apart(monkeypatch):
    migration = importlib.import_module("tidings.audience.migrations.0011_contact_email_key")
    monkeypatch.setattr(migration, "BATCH", 2)  # several batches for a handful of rows
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    try:
        old = executor.loader.project_state([BEFORE]).apps.get_model("audience", "Contact")
        # Two contacts under the old rule, one mailbox under the new.  lower() keeps ß on both
        # databases; only SQLite's lower() keeps Ë apart from ë.
        addresses = ["ada@example.com", "straße@example.com", "Grace@example.com"]
        addresses += ["STRASSE@example.com"]
        if connection.vendor == "sqlite":
            addresses += ["zoë@example.com", "ZOË@example.com"]
        ids = {a: old.objects.create(email=a, name=a.split("@")[0]).pk for a in addresses}

        executor = MigrationExecutor(connection)
        executor.migrate([AFTER])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    keys = dict(Contact.objects.values_list("pk", "email_key"))
    assert keys[ids["ada@example.com"]] == "ada@example.com"
    assert keys[ids["Grace@example.com"]] == "grace@example.com"
    assert keys[ids["straße@example.com"]] == "strasse@example.com"  # the older keeps it
    assert keys[ids["STRASSE@example.com"]] is None  # kept apart, not merged
    apart = [ids["STRASSE@example.com"]]
    if connection.vendor == "sqlite":
        assert keys[ids["zoë@example.com"]] == "zoë@example.com"
        assert keys[ids["ZOË@example.com"]] is None
        apart.append(ids["ZOË@example.com"])
    assert Contact.objects.with_email("Strasse@example.com").get().pk == ids["straße@example.com"]

    finding = check_contacts_kept_apart()
    assert finding.status == "warn"
    assert f"#{ids['STRASSE@example.com']} (same address as #{ids['straße@example.com']})" in (
        finding.summary
    )
    assert f"{len(apart)} contact(s)" in finding.summary
    assert "strasse" not in finding.summary.lower() and "@" not in finding.summary


def _kept_apart(older: Contact, email: str) -> Contact:
    """A contact as the upgrade leaves the newer of two that share a key: NULL key."""
    assert email_key(email) == older.email_key
    (twin,) = Contact.objects.bulk_create([Contact(email=email, name="Twin", email_key=None)])
    return twin


@pytest.mark.django_db
def test_the_doctor_is_content_when_no_contact_was_kept_apart():
    create("zoë@example.com")
    assert check_contacts_kept_apart().status == "ok"


@pytest.mark.django_db
def test_a_contact_a_legal_hold_kept_without_its_address_is_not_kept_apart():
    # Erasure under a legal hold that does not keep the address blanks it and its key
    # (personal_data._blank): no address, nothing to merge, nothing for the doctor to list.
    held, _ = create("zoë@example.com")
    Contact.objects.filter(pk=held.pk).update(**_blank(("name",)))
    assert Contact.objects.get(pk=held.pk).email_key is None
    assert check_contacts_kept_apart().status == "ok"


@pytest.mark.django_db
def test_erasing_a_person_erases_the_contact_the_upgrade_kept_apart_too():
    zoe, _ = create("zoë@example.com")
    twin = _kept_apart(zoe, "ZOË@example.com")
    operator = make_operator("privacy-officer", "owner")

    do_erase_contact(zoe, actor=operator)

    assert not Contact.objects.filter(pk__in=[zoe.pk, twin.pk]).exists()
    assert is_suppressed("ZOË@example.com")
    assert Suppression.objects.count() == 1


@pytest.mark.django_db
def test_erasing_the_contact_kept_apart_erases_the_one_holding_the_address_too():
    zoe, _ = create("zoë@example.com")
    twin = _kept_apart(zoe, "ZOË@example.com")

    do_erase_contact(twin, actor=make_operator("privacy-officer", "owner"))

    assert not Contact.objects.filter(pk__in=[zoe.pk, twin.pk]).exists()
    assert is_suppressed("zoë@example.com")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Another address: both spellings of zoë's mailbox are "not ada", the twin too.
        ('email != "ada@example.com"', {"zoe", "twin"}),
        ('not email = "ada@example.com"', {"zoe", "twin"}),
        ('email not in ("ada@example.com")', {"zoe", "twin"}),
        ('not email ~ "ada"', {"zoe", "twin"}),
        ('not email ^= "ADA@"', {"zoe", "twin"}),
        ('not email $= "@example.org"', {"ada", "zoe", "twin"}),
        # The twin's own mailbox: it is that address, by its key, though it has none stored.
        ('email != "zoë@example.com"', {"ada"}),
        ('email not in ("ZOË@example.com")', {"ada"}),
        ('not email ~ "zoë"', {"ada"}),
        ('email = "zoë@example.com"', {"zoe", "twin"}),
        ('email in ("zoë@example.com")', {"zoe", "twin"}),
        ('email ^= "ZOË@"', {"zoe", "twin"}),
        ('email ~ "Ë@EXAMPLE"', {"zoe", "twin"}),
        ('not (email != "ada@example.com")', {"ada"}),
    ],
)
def test_a_negative_email_condition_keeps_a_contact_kept_apart(text, expected):
    """A contact the upgrade kept apart has no key stored (NULL): ``email_key != x`` is unknown
    for it, and a segment dropped it from `email != …` — a negative condition silently left
    people out.  Its address is compared by its key all the same, and the count is the
    members'."""
    from tidings.audience.segments import count_segment, segment_queryset

    zoe, _ = create("zoë@example.com")
    ada, _ = create("ada@example.com")
    twin = _kept_apart(zoe, "ZOË@example.com")
    names = {zoe.pk: "zoe", ada.pk: "ada", twin.pk: "twin"}

    members = list(segment_queryset(text))
    assert {names[c.pk] for c in members} == expected
    assert count_segment(text) == len(members) == len(expected)
    # Every condition is true or false for every contact: a condition and its negation
    # together are everyone.
    assert count_segment(text) + count_segment(f"not ({text})") == Contact.objects.count()


@pytest.mark.django_db
def test_a_save_that_does_not_write_the_address_leaves_a_kept_apart_key_alone():
    zoe, _ = create("zoë@example.com")
    twin = _kept_apart(zoe, "ZOË@example.com")
    twin = Contact.objects.get(pk=twin.pk)

    twin.name = "Zoë (twin)"
    twin.save()

    twin.refresh_from_db()
    assert twin.email_key is None and twin.name == "Zoë (twin)"
