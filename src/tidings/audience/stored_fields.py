"""Contact data that no purpose of the policy collects any more.

The forms, the API, imports and journeys only store the fields a purpose collects.  When the
policy is changed — a field taken out of every purpose, a purpose removed — what was collected
under the old policy stays on the contacts: ``fields_outside_policy`` counts it (``tidings
doctor`` warns, check ``policy.fields``) and ``do_prune_fields`` removes it
(``tidings audience prune-fields --yes``), with one audit entry naming the fields and how many
contacts held each, never a value.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from tidings.lib.audit import audit
from tidings.policy import get_policy

from .models import Contact

BATCH = 2_000


def collected_fields() -> frozenset[str]:
    """Every field some purpose of the policy collects (required or optional)."""
    policy = get_policy()
    return frozenset(f for key in policy.purposes for f in policy.fields_for(key).all)


def _attribute_keys() -> list[str]:
    """The keys present in any contact's attributes (a scan of the table, done in SQL)."""
    table = connection.ops.quote_name(Contact._meta.db_table)
    if connection.vendor == "postgresql":
        sql = f"SELECT DISTINCT jsonb_object_keys(attributes) FROM {table}"  # noqa: S608
    else:  # SQLite's JSON1
        sql = f"SELECT DISTINCT j.key FROM {table}, json_each({table}.attributes) AS j"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return sorted(row[0] for row in cursor.fetchall())


def _column_fields() -> tuple[str, ...]:
    return tuple(f for f in Contact.COLUMN_FIELDS if f != "email")  # the address identifies


def fields_outside_policy() -> dict[str, int]:
    """{field: contacts holding a value for it} for fields no purpose collects."""
    collected = collected_fields()
    found: dict[str, int] = {}
    for name in _column_fields():
        if name not in collected:
            count = Contact.objects.exclude(**{name: ""}).count()
            if count:
                found[name] = count
    for key in _attribute_keys():
        if key not in collected:
            found[key] = Contact.objects.filter(attributes__has_key=key).count()
    return found


@transaction.atomic
def do_prune_fields(*, actor: Any = None) -> dict[str, int]:
    """Remove from every contact the fields no purpose collects; returns what was removed
    ({field: contacts}).  Idempotent: a second run finds nothing."""
    found = fields_outside_policy()
    now = timezone.now()
    attribute_keys = [key for key in found if key not in Contact.COLUMN_FIELDS]
    for name in found:
        if name in Contact.COLUMN_FIELDS:
            Contact.objects.exclude(**{name: ""}).update(**{name: "", "updated_at": now})
    if attribute_keys:
        holders = Contact.objects.filter(attributes__has_any_keys=attribute_keys).only(
            "pk", "attributes"
        )
        changed = []
        for contact in holders.iterator(chunk_size=BATCH):
            contact.attributes = {
                k: v for k, v in contact.attributes.items() if k not in attribute_keys
            }
            contact.updated_at = now
            changed.append(contact)
            if len(changed) >= BATCH:
                Contact.objects.bulk_update(changed, ["attributes", "updated_at"])
                changed = []
        if changed:
            Contact.objects.bulk_update(changed, ["attributes", "updated_at"])
    if found:
        audit("contacts.fields_pruned", actor=actor, fields=found)
    return found
