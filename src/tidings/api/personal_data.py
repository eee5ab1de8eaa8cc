"""The webhook log as personal data (see ``tidings.audience.sources``): which of our connected
systems were told about the person, and when (Art. 15(1)(c): the recipients).

A webhook delivery holds internal ids only (``data``: the contact's id, a delivery's id); the
personal fields an endpoint was granted are read at send time.  Erasure clears those ids, so the
log keeps what was sent where and when, and no longer whom it was about.
"""

from __future__ import annotations

from typing import Any

from tidings.audience.sources import AnyOf, People, PersonalData, ids_of, key_in, register

from .models import EVENTS, WebhookDelivery

_ID_KEYS = ("contact_id", "delivery_id")


def _deliveries_of(people: People) -> list[int]:
    from tidings.campaigns.models import Delivery

    return ids_of(Delivery.objects.filter(AnyOf("contact_id", people.contact_ids)))


def _rows_of(people: People, delivery_ids: list[int]):
    condition = key_in("data", "contact_id", people.contact_ids)
    if delivery_ids:
        condition |= key_in("data", "delivery_id", delivery_ids)
    return (
        WebhookDelivery.objects.filter(condition)
        if people.contact_ids
        else WebhookDelivery.objects.none()
    )


def export_webhooks(contact: Any) -> list[dict[str, Any]]:
    people = People.of(contact)
    rows = _rows_of(people, _deliveries_of(people)).select_related("endpoint")
    return [
        {
            "what": EVENTS.get(row.event, row.event),
            "sent_to": row.endpoint.description or row.endpoint.url,
            "at": row.created_at.isoformat(),
            "status": row.get_status_display(),
        }
        for row in rows.order_by("created_at", "pk")
    ]


def find_webhooks(people: People) -> dict[str, list[int]]:
    deliveries = _deliveries_of(people)
    rows = ids_of(_rows_of(people, deliveries))
    return (
        {"rows": rows, "contacts": list(people.contact_ids), "deliveries": deliveries}
        if rows
        else {}
    )


def forget_in_webhook_log(found: dict[str, list[int]]) -> int:
    people = {"contact_id": set(found["contacts"]), "delivery_id": set(found["deliveries"])}
    rows = list(WebhookDelivery.objects.filter(AnyOf("pk", found["rows"])).only("pk", "data"))
    for row in rows:
        row.data = {
            key: (None if key in people and value in people[key] else value)
            for key, value in row.data.items()
        }
    WebhookDelivery.objects.bulk_update(rows, ["data"], batch_size=500)
    return len(rows)


def merge_webhook_log(m: Any) -> int:
    """Notices about the dropped contact (or its folded deliveries) name the kept one."""
    from tidings.audience.merge import repoint_json

    return repoint_json(
        m,
        WebhookDelivery.objects.all(),
        "data",
        {"contact_id": "contact", "delivery_id": "campaigns.Delivery"},
    )


def register_sources() -> None:
    from tidings.audience.merge import register_after_merge

    register_after_merge("webhooks", merge_webhook_log)
    register(
        PersonalData(
            name="webhooks",
            title="Notices about you sent to our other systems",
            record_kind=None,
            models=(WebhookDelivery,),
            export=export_webhooks,
            find=find_webhooks,
            remove=forget_in_webhook_log,
            order=42,
            about=(
                "When something changes (you subscribe, an email bounces), our connected "
                "systems are told, with only the details each is allowed; erasure removes you "
                "from this log."
            ),
            retention="Kept as the record of what was sent where; when your data is erased, "
            "the log no longer says whom a notice was about.",
        )
    )
