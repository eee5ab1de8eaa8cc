"""The erasure journal: fed by the contacts_erased signal, applied after a restore."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.campaigns.delivery_helpers import make_list, subscribers
from tidings import signals
from tidings.audience.emails import email_hmac
from tidings.audience.models import Contact, Suppression
from tidings.ops import journal

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _journal(settings, tmp_path) -> Path:
    settings.TIDINGS_ERASURE_JOURNAL = str(tmp_path / "erasure-journal.jsonl")
    return Path(settings.TIDINGS_ERASURE_JOURNAL)


def _erased(email: str, *, at=None, reason: str = "request") -> None:
    signals.contacts_erased.send(
        sender=Contact,
        email_hmacs=(email_hmac(email),),
        erased_at=at or timezone.now(),
        reason=reason,
    )


def test_the_signal_appends_one_line_with_the_keyed_hash_and_no_address(_journal):
    _erased("ada@example.org")
    _erased("bob@example.org", reason="retention")
    lines = [json.loads(line) for line in _journal.read_text().splitlines()]
    assert [line["reason"] for line in lines] == ["request", "retention"]
    assert lines[0]["h"] == email_hmac("ada@example.org")
    assert "example.org" not in _journal.read_text()
    assert oct(_journal.stat().st_mode & 0o777) == "0o600"


def test_reapplying_erases_people_held_again_and_suppresses_their_addresses(_journal):
    ada, bob = subscribers(make_list(), 2)
    erased_at = timezone.now() + timedelta(seconds=1)
    _erased(ada.email, at=erased_at)
    _erased("never-held@example.org", at=erased_at)
    result = journal.do_reapply_erasures([_journal])
    assert (result.entries, result.erased, result.suppressed) == (2, 1, 1)
    assert not Contact.objects.filter(pk=ada.pk).exists()
    assert Contact.objects.filter(pk=bob.pk).exists()
    for email in (ada.email, "never-held@example.org"):
        assert Suppression.objects.filter(email_hmac=email_hmac(email), reason="erased").exists()
    again = journal.do_reapply_erasures([_journal])
    assert (again.erased, again.suppressed) == (0, 0)  # nothing left to do


def test_someone_who_signed_up_again_after_their_erasure_is_kept(_journal):
    (cy,) = subscribers(make_list(), 1)
    _erased(cy.email, at=cy.created_at - timedelta(days=3))
    result = journal.do_reapply_erasures([_journal])
    assert result.kept_new_signups == 1
    assert Contact.objects.filter(pk=cy.pk).exists()
    assert not Suppression.objects.filter(email_hmac=email_hmac(cy.email)).exists()


def test_a_torn_line_is_skipped_and_counted(_journal):
    _erased("ada@example.org")
    with _journal.open("a") as fp:
        fp.write('{"h": "abc", "at"')
    entries, bad = journal.read([_journal, _journal.with_name("missing.jsonl")])
    assert (len(entries), bad) == (1, 1)


def test_a_retention_sweep_journals_everyone_it_erased_with_one_sync_per_batch(
    _journal, monkeypatch, django_capture_on_commit_callbacks
):
    import os

    import time_machine

    from tidings.crm.actions import do_receive_enquiry
    from tidings.rights.retention import run_retention

    emails = [f"person{i}@example.com" for i in range(5)]
    with time_machine.travel("2026-03-01 10:00Z", tick=False):
        for email in emails:
            do_receive_enquiry({"name": "P", "email": email}, channel="email", message="Hi")
    syncs = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(fd), real_fsync(fd)))
    with (
        time_machine.travel("2027-03-02 10:00Z", tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = run_retention(batch_size=2, actor_label="test")
    assert result.contacts == 5 and result.batches == 3
    lines = [json.loads(line) for line in _journal.read_text().splitlines()]
    assert sorted(line["h"] for line in lines) == sorted(email_hmac(e) for e in emails)
    assert {line["reason"] for line in lines} == {"retention"}
    assert len(syncs) == 3  # one per batch, not one per person


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "no such file"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "not an erasure journal"),
        # Plain text that is no journal (the wrong file named) was read as 0 people, exit 0.
        (
            b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
            "not an erasure journal",
        ),
    ],
)
def test_reapplying_a_journal_that_is_missing_or_not_a_journal_fails_with_one_line(
    tmp_path, content, says
):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    named = tmp_path / "copy.jsonl"
    if content is not None:
        named.write_bytes(content)
    with pytest.raises(CommandError) as raised:
        call_command("erasures", "reapply", "--journal", str(named))
    message = str(raised.value)
    assert str(named) in message and says in message and "\n" not in message


def test_a_named_journal_with_a_torn_last_line_is_applied_and_the_line_counted(_journal, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    named = tmp_path / "copy.jsonl"
    _erased("ada@example.org")
    named.write_text(_journal.read_text() + '{"h": "abc", "at"')
    out = StringIO()
    call_command("erasures", "reapply", "--journal", str(named), stdout=out)
    assert "1 people" in out.getvalue() and "1 line could not be read" in out.getvalue()
