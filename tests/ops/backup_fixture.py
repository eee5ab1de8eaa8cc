"""Set up and inspect the database of a data directory, for tests that run `tidings backup` and
`tidings restore` as real processes.

    python -m tests.ops.backup_fixture list NAME
    python -m tests.ops.backup_fixture people EMAIL...      (subscribed to "Product news")
    python -m tests.ops.backup_fixture erase EMAIL           (a real erasure)
    python -m tests.ops.backup_fixture report EMAIL...       -> JSON
    python -m tests.ops.backup_fixture backup-when-told PATH (`tidings backup PATH` once a line
                                                              arrives on stdin: no start-up wait)

Run with the same TIDINGS_DATA_DIR / DATABASE_URL / SECRET_KEY as tidings.
"""

from __future__ import annotations

import json
import sys


def _list():
    from tidings.audience.models import MailingList

    return MailingList.objects.get_or_create(name="Product news", defaults={"topic": "news"})[0]


def people(emails: list[str]) -> dict:
    from tidings.audience.actions import do_create_contact, do_subscribe

    mailing_list = _list()
    for email in emails:
        contact, _ = do_create_contact(
            {"name": email.split("@")[0].title(), "email": email}, purpose="newsletter"
        )
        do_subscribe(contact, mailing_list, source="form", wording_text="Yes", confirmed=True)
    return {"people": len(emails)}


def erase(email: str) -> dict:
    """Erase through the rights action, as an operator would; the erasure module's signal
    (``contacts_erased``, on commit) makes the journal write its line."""
    from pathlib import Path

    from django.conf import settings
    from django.db import transaction

    from tidings.audience.models import Contact
    from tidings.rights.actions import do_erase_contact

    journal = Path(settings.TIDINGS_ERASURE_JOURNAL)
    before = journal.read_text().count("\n") if journal.exists() else 0
    with transaction.atomic():
        do_erase_contact(Contact.objects.with_email(email).first(), email=email)
    after = journal.read_text().count("\n") if journal.exists() else 0
    # The erasure module sends contacts_erased on commit; the journal's listener wrote a line.
    return {"signal_sent_by_erasure": after > before}


def report(emails: list[str]) -> dict:
    from tidings.audience.emails import email_hmac
    from tidings.audience.models import Contact, Subscription, Suppression

    return {
        "contacts": Contact.objects.count(),
        "subscriptions": Subscription.objects.filter(status="confirmed").count(),
        "held": [e for e in emails if Contact.objects.with_email(e).exists()],
        "suppressed": [
            e for e in emails if Suppression.objects.filter(email_hmac=email_hmac(e)).exists()
        ],
    }


def main(argv: list[str]) -> None:
    import django

    django.setup()
    command, rest = argv[0], argv[1:]
    if command == "backup-when-told":
        from django.core.management import call_command

        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.readline()
        call_command("backup", rest[0])
        return
    if command == "list":
        result = {"list": _list().pk}
    elif command == "people":
        result = people(rest)
    elif command == "erase":
        result = erase(rest[0])
    else:
        result = report(rest)
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
