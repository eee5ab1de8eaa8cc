"""Set up and inspect a database for tests that run real ``tidings worker`` processes.

    python -m tests.campaigns.worker_fixture setup <recipients>   -> JSON: campaign id, addresses
    python -m tests.campaigns.worker_fixture report <campaign id> -> JSON: row states, recoveries

Run with the same DATABASE_URL and DJANGO_SETTINGS_MODULE as the workers.
"""

from __future__ import annotations

import json
import sys


def setup(recipients: int) -> dict:
    from django.db import transaction

    from tidings.audience.models import Contact, MailingList, Subscription

    from .delivery_helpers import sending_campaign

    with transaction.atomic():
        news = MailingList.objects.create(name="Product news", topic="product news")
        contacts = Contact.objects.bulk_create(
            [Contact(name=f"Reader {n}", email=f"reader{n}@example.org") for n in range(recipients)]
        )
        Subscription.objects.bulk_create(
            [
                Subscription(contact=c, mailing_list=news, status=Subscription.Status.CONFIRMED)
                for c in contacts
            ]
        )
        campaign = sending_campaign(news)
    return {"campaign": campaign.pk, "emails": [c.email for c in contacts]}


def report(campaign_id: int) -> dict:
    from django.db.models import Count

    from tidings.campaigns.models import Campaign, Delivery, DeliveryWorker

    return {
        "status": Campaign.objects.get(pk=campaign_id).status,
        "rows": dict(
            Delivery.objects.filter(campaign_id=campaign_id)
            .values_list("status")
            .annotate(n=Count("pk"))
            .order_by()
        ),
        "recovered": list(
            DeliveryWorker.objects.filter(recovered_at__isnull=False).values_list(
                "recovered_rows", flat=True
            )
        ),
        # How long after its last heartbeat each vanished worker's rows were recovered.
        "recovered_after": [
            (w.recovered_at - w.last_seen).total_seconds()
            for w in DeliveryWorker.objects.filter(recovered_at__isnull=False)
        ],
        "workers": DeliveryWorker.objects.count(),
    }


def main(argv: list[str]) -> None:
    import django

    django.setup()
    result = setup(int(argv[1])) if argv[0] == "setup" else report(int(argv[1]))
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
