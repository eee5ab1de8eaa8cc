"""An erasure leaves no anonymous row stamped with its own instant.

The erasure journal (``ops.journal``) keeps the exact instant of every erasure beside the keyed
hash of the address, to re-apply erasures after a backup is restored.  A row the erasure leaves
behind as anonymous statistics (a journey place closed as "erased", its exit in the history)
stamped with that same instant could be matched back to the journal's entry, and through it to
the person.  Every table is scanned for the instant: only the rows that name the erasure itself
(the activity log's entries of it) or already hold the address's hash (what the receipt says is
kept: the do-not-email list) may carry it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils.dateparse import parse_datetime

from tidings.journeys.models import Enrolment
from tidings.lib.models import AuditEntry
from tidings.rights.actions import do_erase_contact

from .generators import GENERATORS, distinct_ids, fill, new_person
from .scan import holds

pytestmark = pytest.mark.django_db

ERASED_AT = datetime(2026, 12, 9, 14, 27, 31, 918273, tzinfo=UTC)


def stamped_with(instant: datetime) -> set[tuple[str, str, object]]:
    """(table, column, row id) of every value in the database equal to ``instant``."""
    found = set()
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            columns = [
                c.name for c in connection.introspection.get_table_description(cursor, table)
            ]
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, str):  # SQLite's datetimes come back as text
                        value = parse_datetime(value) if value[:2] == "20" else None
                    if isinstance(value, datetime):
                        if value.tzinfo is None:
                            value = value.replace(tzinfo=UTC)
                        if value == instant:
                            found.add((table, column, row[0]))
    return found


def test_no_anonymous_row_an_erasure_leaves_carries_the_instant_the_journal_keeps(
    time_machine, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.TIDINGS_ERASURE_JOURNAL = str(tmp_path / "journal.jsonl")
    cache.clear()
    distinct_ids()
    # Every source filled, but no complaint on file (which would take them out of the journey
    # before the erasure): a journey place still open is what the erasure closes.
    ada = fill(new_person(), set(GENERATORS) - {"suppression"})
    assert Enrolment.objects.filter(contact=ada.contact, state__in=Enrolment.OPEN).exists()
    time_machine.move_to(ERASED_AT, tick=False)

    with django_capture_on_commit_callbacks(execute=True):
        receipt = do_erase_contact(ada.contact, actor=None)

    [line] = (tmp_path / "journal.jsonl").read_text().splitlines()
    assert datetime.fromisoformat(json.loads(line)["at"]) == ERASED_AT
    allowed = {
        (held.model._meta.db_table, pk) for held in holds(receipt.kept) for pk in held.ids
    } | {(AuditEntry._meta.db_table, pk) for pk in AuditEntry.objects.values_list("pk", flat=True)}
    stamped = {
        (table, column)
        for table, column, pk in stamped_with(ERASED_AT)
        if (table, pk) not in allowed
    }
    assert stamped == set()
    enrolment = Enrolment.objects.get(exit_reason="erased")
    assert enrolment.finished_at == datetime(2026, 12, 9, tzinfo=UTC)
