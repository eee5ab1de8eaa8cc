"""The consent ledger: append-only, the source of the current state, exportable as proof."""

from __future__ import annotations

import ast
import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import ProtectedError
from django.utils import timezone

import tidings
from tests.audience.public_helpers import make_list
from tidings.audience.actions import (
    do_create_contact,
    do_subscribe,
    do_unsubscribe,
    do_unsubscribe_all,
    wording,
)
from tidings.audience.consent import (
    PROOF_COLUMNS,
    current_state,
    proof_rows,
    proof_table,
    write_proof_csv,
)
from tidings.audience.models import ConsentEvent, Contact, Subscription

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public_pages")]

SRC = Path(tidings.__file__).parent

# The only functions that may delete consent events, or change them.  Each says why.
ALLOWED_LEDGER_DELETERS = {
    ("audience/actions.py", "_delete_ledger_of_unconfirmed"),
    # Erasure (a request, or the retention sweep erasing a contact left with nothing): the
    # person's events stay as anonymous tombstones, their contact and IP address cleared.
    ("audience/personal_data.py", "tombstone_consent_events"),
    # Merging two contacts that are one person: the dropped contact's events are re-pointed to
    # the kept one (contact_id only; action, time, words and source stay as recorded).
    ("audience/merge.py", "merge_consent_events"),
}
MUTATING = {"update", "delete", "bulk_update", "_raw_delete", "update_or_create", "_update"}
BYPASSES = {"_base_manager"}  # a plain Manager: the append-only queryset is not on it


@pytest.fixture
def ada(news):
    contact, _ = do_create_contact(
        {"name": "Ada Lovelace", "email": "ada@example.com"}, purpose="newsletter"
    )
    do_subscribe(contact, news, source="form", wording_text="Yes, email me news.", confirmed=True)
    return contact


# --- (a) nothing updates or deletes an event --------------------------------------------------
def test_an_event_cannot_be_saved_again(ada):
    event = ConsentEvent.objects.get()
    event.action = "withdrawn"

    with pytest.raises(TypeError, match="append-only"):
        event.save()
    with pytest.raises(TypeError, match="append-only"):
        event.save(update_fields=["action"])
    assert ConsentEvent.objects.get().action == "granted"


def test_an_event_cannot_be_deleted(ada):
    with pytest.raises(TypeError, match="append-only"):
        ConsentEvent.objects.get().delete()


def test_querysets_and_managers_of_events_cannot_update_or_delete(ada):
    with pytest.raises(TypeError):
        ConsentEvent.objects.filter(contact=ada).update(action="withdrawn")
    with pytest.raises(TypeError):
        ConsentEvent.objects.all().delete()
    with pytest.raises(TypeError):
        ada.consent_events.all().update(source="api")
    with pytest.raises(TypeError):
        ada.consent_events.all().delete()
    assert ConsentEvent.objects.get().source == "form"
    event = ConsentEvent.objects.get()
    event.source = "api"
    with pytest.raises(TypeError):  # last: it breaks the test's transaction as it raises
        ConsentEvent.objects.bulk_update([event], ["source"])


def test_a_contact_with_consent_events_cannot_be_deleted_behind_the_ledgers_back(ada):
    with pytest.raises(ProtectedError):
        Contact.objects.filter(pk=ada.pk).delete()


def _receiver_chain(node: ast.AST) -> list[ast.AST]:
    """The nodes a call's receiver is made of: x.objects.filter(...).update -> [x, objects...]."""
    chain = []
    while True:
        chain.append(node)
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            chain.extend(node.args)
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return chain


def _names(chain: list[ast.AST]) -> set[str]:
    names = set()
    for node in chain:
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    return names


def ledger_mutations(source: str, filename: str = "<test>") -> list[str]:
    """Places in ``source`` that update or delete consent events, or go round their guard.

    Found: a mutating method called on a chain that starts at ConsentEvent, goes through a
    ``consent_events`` related manager, or wraps ConsentEvent in a plain ``QuerySet(...)``; any
    use of ConsentEvent's base manager (which lacks the guard); UPDATE or DELETE SQL naming the
    ledger's table.
    """
    tree = ast.parse(source)
    parents: dict[ast.AST, ast.AST] = {}
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            parents[child] = parent

    def function_of(node: ast.AST) -> str:
        while node in parents:
            node = parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node.name
        return "<module>"

    found = []
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')} in {function_of(node)}()"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            names = _names(_receiver_chain(node.func.value))
            about_ledger = "ConsentEvent" in names or "consent_events" in names
            if node.func.attr in MUTATING and about_ledger:
                found.append(f"{where}: .{node.func.attr}() on consent events")
        if (
            isinstance(node, ast.Attribute)
            and node.attr in BYPASSES
            and "ConsentEvent" in _names(_receiver_chain(node.value))
        ):
            found.append(f"{where}: ConsentEvent.{node.attr}")
        if isinstance(node, ast.JoinedStr | ast.Constant):
            text = ast.unparse(node) if isinstance(node, ast.JoinedStr) else str(node.value)
            if re.search(r"\b(UPDATE|DELETE\s+FROM)\b", text, re.IGNORECASE) and (
                "ConsentEvent" in text or "audience_consentevent" in text.lower()
            ):
                found.append(f"{where}: SQL that changes the ledger")
    return found


def _allowed(finding: str) -> bool:
    return any(
        finding.startswith(f"{path}:") and f" in {function}()" in finding
        for path, function in ALLOWED_LEDGER_DELETERS
    )


def test_no_code_path_updates_or_deletes_consent_events():
    findings = []
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        relative = path.relative_to(SRC).as_posix()
        findings += ledger_mutations(path.read_text(encoding="utf-8"), relative)

    assert [f for f in findings if not _allowed(f)] == []
    # The purge path is there, and is the one the allowance is for.
    assert any(_allowed(f) for f in findings)


@pytest.mark.parametrize(
    "line",
    [
        "ConsentEvent.objects.filter(contact=c).update(action='x')",
        "ConsentEvent.objects.all().delete()",
        "contact.consent_events.filter(purpose='x').delete()",
        "models.QuerySet(ConsentEvent).filter(pk=1).delete()",
        "ConsentEvent._base_manager.all()",
        "ConsentEvent.objects.bulk_update(rows, ['action'])",
        "cursor.execute(f'UPDATE {ConsentEvent._meta.db_table} SET action = 1')",
        "cursor.execute('DELETE FROM audience_consentevent')",
    ],
)
def test_the_scan_finds_each_way_of_changing_the_ledger(line):
    assert ledger_mutations(f"def f():\n    {line}\n")


def test_the_scan_leaves_reads_and_inserts_alone():
    source = (
        "def f():\n"
        "    ConsentEvent.objects.create(action='granted')\n"
        "    ConsentEvent.objects.bulk_create(rows)\n"
        "    ConsentEvent.objects.filter(contact=c).order_by('at').values_list('pk')\n"
        "    Subscription.objects.filter(pk=1).update(status='x')\n"
        "    cursor.execute(f'INSERT INTO {ConsentEvent._meta.db_table} VALUES (1)')\n"
    )
    assert ledger_mutations(source) == []


# --- (c) the current state is derived from the ledger -----------------------------------------
def record(contact, action, *, at, purpose="newsletter", channel="email", mailing_list=None):
    return ConsentEvent.objects.create(
        contact=contact,
        purpose=purpose,
        channel=channel,
        mailing_list=mailing_list,
        topic=mailing_list.topic if mailing_list else "",
        action=action,
        at=at,
        source="operator",
    )


def test_the_latest_event_in_time_decides_whatever_order_they_were_written_in(news):
    bob = Contact.objects.create(email="bob@example.com")
    now = timezone.now()
    record(bob, "withdrawn", at=now, mailing_list=news)
    record(bob, "granted", at=now - timedelta(days=1), mailing_list=news)  # written late

    assert current_state(bob).list_granted(news.pk) is False
    record(bob, "granted", at=now + timedelta(minutes=1), mailing_list=news)
    assert current_state(bob).list_granted(news.pk) is True


def test_unsubscribing_from_everything_overrides_earlier_grants_but_not_later_ones(news, events):
    bob = Contact.objects.create(email="bob@example.com")
    now = timezone.now()
    record(bob, "granted", at=now - timedelta(days=2), mailing_list=news)
    record(bob, "withdrawn", at=now - timedelta(days=1), purpose="marketing")
    record(bob, "granted", at=now, mailing_list=events)

    state = current_state(bob)

    assert state.list_granted(news.pk) is False
    assert state.list_granted(events.pk) is True
    assert state.standing("marketing", "email").action == "withdrawn"
    assert state.list_granted(999_999) is False


def test_the_state_replayed_from_the_ledger_matches_every_change_the_actions_made(
    ada, news, events
):
    do_subscribe(ada, events, source="form", wording_text="Yes, events.", confirmed=True)
    assert current_state(ada).list_granted(events.pk)

    do_unsubscribe(ada, news, source="unsubscribe")
    state = current_state(ada)
    assert (state.list_granted(news.pk), state.list_granted(events.pk)) == (False, True)

    do_unsubscribe_all(ada, source="unsubscribe")
    state = current_state(ada)
    assert (state.list_granted(news.pk), state.list_granted(events.pk)) == (False, False)
    for sub in Subscription.objects.filter(contact=ada):
        assert (sub.status == "confirmed") == current_state(ada).list_granted(sub.mailing_list_id)


# --- (d) proof for operators ------------------------------------------------------------------
def test_an_operator_can_export_a_contacts_consent_proof(ada, news):
    do_unsubscribe(ada, news, source="unsubscribe", source_ref="delivery:7")

    rows = proof_rows(ada)

    assert [r["action"] for r in rows] == ["granted", "withdrawn"]
    granted, withdrawn = rows
    assert granted["list"] == "Product news" and granted["topic"] == "product news"
    assert granted["wording"] == "Yes, email me news."
    assert granted["wording_sha256"] == wording("Yes, email me news.").sha256
    assert granted["source"] == "form" and granted["ip_address"] == ""
    assert withdrawn["source_ref"] == "delivery:7" and withdrawn["wording"] == ""
    assert granted["when"] < withdrawn["when"]
    header, table = proof_table(ada)
    assert header == list(PROOF_COLUMNS) and len(table) == 2


def test_the_proof_csv_cannot_smuggle_formulas_into_a_spreadsheet(news):
    eve = Contact.objects.create(email="eve@example.com")
    sneaky = make_list('=HYPERLINK("http://evil")', "training")
    for text in ["+1+1", "-1", "@SUM(A1)", "\tcmd", "\rcmd", "plain"]:
        ConsentEvent.objects.create(
            contact=eve,
            purpose="newsletter",
            channel="email",
            mailing_list=sneaky,
            action="granted",
            source="api",
            source_ref=text,
            wording=wording(f"={text}"),
            ip_address="192.0.2.1",
        )

    out = io.StringIO()
    write_proof_csv(proof_rows(eve), out)

    lines = list(csv.reader(io.StringIO(out.getvalue())))
    assert lines[0] == list(PROOF_COLUMNS)
    column = {name: i for i, name in enumerate(PROOF_COLUMNS)}
    refs = [line[column["source_ref"]] for line in lines[1:]]
    assert refs == ["'+1+1", "'-1", "'@SUM(A1)", "'\tcmd", "'\rcmd", "plain"]
    assert all(line[column["list"]].startswith("'=") for line in lines[1:])
    assert all(line[column["wording"]].startswith("'=") for line in lines[1:])
    assert {line[column["ip_address"]] for line in lines[1:]} == {"192.0.2.1"}
