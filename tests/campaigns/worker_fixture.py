"""Set up and inspect a database for tests that run real ``tidings worker`` processes.

    python -m tests.campaigns.worker_fixture setup <recipients>   -> JSON: campaign id, addresses
    python -m tests.campaigns.worker_fixture setup-ab <recipients> -> the same, as an A/B test
        whose variants (subjects "Variant A"/"Variant B") are fixed on the rows, and each
        address's expected subject
    python -m tests.campaigns.worker_fixture report <campaign id> -> JSON: row states, recoveries

Run with the same DATABASE_URL and DJANGO_SETTINGS_MODULE as the workers.
"""

from __future__ import annotations

import json
import sys


def setup(recipients: int, *, variants: bool = False) -> dict:
    from django.db import transaction

    from tidings.audience.models import Contact, MailingList, Subscription
    from tidings.campaigns.models import ABTest, Delivery, Variant
    from tidings.campaigns.queue import assign_variants

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
        result = {"campaign": campaign.pk, "emails": [c.email for c in contacts]}
        if variants:
            test = ABTest.objects.create(campaign=campaign, share=100, seed=11)
            ids = [
                Variant.objects.create(
                    campaign=campaign, label=label, subject=f"Variant {label}"
                ).pk
                for label in ("A", "B")
            ]
            assign_variants(campaign, ids, test.share, test.seed)
            result["subjects"] = dict(
                Delivery.objects.filter(campaign=campaign).values_list(
                    "contact__email", "variant__subject"
                )
            )
    return result


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
        "workers": DeliveryWorker.objects.count(),
    }


def main(argv: list[str]) -> None:
    import django

    django.setup()
    if argv[0].startswith("setup"):
        result = setup(int(argv[1]), variants=argv[0] == "setup-ab")
    else:
        result = report(int(argv[1]))
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
