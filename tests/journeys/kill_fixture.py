"""Set up, advance and inspect a database for the journey worker-kill test.

    python -m tests.journeys.kill_fixture setup <people>  -> JSON: journey id
    python -m tests.journeys.kill_fixture advance         -> runs steps slowly until none is due
    python -m tests.journeys.kill_fixture report          -> JSON: mail per person, states

Run with the same DATABASE_URL and DJANGO_SETTINGS_MODULE as the test gives.
"""

from __future__ import annotations

import json
import sys
import time


def setup(people: int) -> dict:
    from django.db import transaction

    from tidings.audience.models import Contact, MailingList, Subscription
    from tidings.campaigns.models import Template
    from tidings.campaigns.rendering import ensure_default_layout
    from tidings.journeys.actions import JourneySpec, do_activate, do_create_journey, do_enrol

    with transaction.atomic():
        news = MailingList.objects.create(name="Product news", topic="product news")
        contacts = Contact.objects.bulk_create(
            [Contact(name=f"Reader {n}", email=f"reader{n}@example.org") for n in range(people)]
        )
        Subscription.objects.bulk_create(
            [
                Subscription(contact=c, mailing_list=news, status=Subscription.Status.CONFIRMED)
                for c in contacts
            ]
        )
        Template.objects.create(
            name="Welcome", layout=ensure_default_layout(), subject="Hi", body="Hello"
        )
        steps = [
            {"id": "hello", "kind": "send_email", "template": "Welcome"},
            {"id": "mark", "kind": "webhook", "event": "welcomed"},
            {"id": "pause", "kind": "wait", "duration": "2 days"},
            {"id": "tips", "kind": "send_email", "template": "Welcome"},
        ]
        spec = JourneySpec("Welcome", "product news", "confirmed", {}, "once", 0, steps, [])
        journey = do_create_journey(spec, actor=None)
        do_activate(journey, actor=None)
        for contact in contacts:
            do_enrol(journey, contact)
    return {"journey": journey.pk}


def advance() -> None:
    from tidings.journeys.engine import advance_due
    from tidings.journeys.models import Enrolment

    sys.stdout.write("advancing\n")
    sys.stdout.flush()
    while True:
        ran = advance_due(limit=5)
        sys.stdout.write(f"ran {ran}\n")  # the test kills after a number of these, not a time
        sys.stdout.flush()
        if not ran and not Enrolment.objects.filter(step="hello").exists():
            break
        time.sleep(0.01)


def report() -> dict:
    from collections import Counter

    from tidings.campaigns.models import OutgoingMessage
    from tidings.journeys.models import Enrolment, EnrolmentStep

    mail = Counter(
        OutgoingMessage.objects.filter(kind__startswith="journey:").values_list(
            "contact_id", flat=True
        )
    )
    return {
        "people": Enrolment.objects.count(),
        "mail": dict(Counter(mail.values())),
        "at": dict(Counter(Enrolment.objects.values_list("step", flat=True))),
        "sent_steps": EnrolmentStep.objects.filter(outcome="sent").count(),
    }


def main(args: list[str]) -> None:
    import django

    django.setup()
    if args[0] == "setup":
        sys.stdout.write(json.dumps(setup(int(args[1]))) + "\n")
    elif args[0] == "advance":
        advance()
    else:
        sys.stdout.write(json.dumps(report()) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
