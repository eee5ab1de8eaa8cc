"""Set up and inspect the database of the import-kill test (tests/audience/test_import_kill.py).

    python -m tests.audience.import_kill_fixture list NAME   -> JSON: the list's id
    python -m tests.audience.import_kill_fixture state       -> JSON: the last import as shown

Run with the same DATABASE_URL / TIDINGS_DATA_DIR / SECRET_KEY as the `tidings` it checks.
"""

from __future__ import annotations

import json
import sys


def make_list(name: str) -> dict:
    from tidings.audience.models import MailingList

    return {"list": MailingList.objects.create(name=name, topic="news").pk}


def state() -> dict:
    from tidings.audience.imports import COUNTERS
    from tidings.audience.imports.lease import is_interrupted, resume_command, status_text
    from tidings.audience.models import ConsentEvent, Contact, Import, Subscription

    imp = Import.objects.order_by("-pk").first()
    assert imp is not None
    return {
        "id": imp.pk,
        "imports": Import.objects.count(),
        "status": imp.status,
        "status_text": status_text(imp),
        "resume_command": resume_command(imp) if is_interrupted(imp) else "",
        "counts": {name: getattr(imp, name) for name in COUNTERS},
        "contacts": Contact.objects.count(),
        "subscriptions": Subscription.objects.count(),
        "consent_events": ConsentEvent.objects.count(),
    }


def main(args: list[str]) -> None:
    import django

    django.setup()
    out = make_list(args[1]) if args[0] == "list" else state()
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
