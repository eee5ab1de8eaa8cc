"""The benchmarks measure contacts as the product makes them.  A contact with no ``email_key``
is one the upgrade kept apart (audience migration 0011): a bench that writes contacts with raw
SQL and no key measures contacts the product never makes (no unique-index write, every email
segment condition deciding them in Python)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from django.db import connection

from tidings.audience.models import Contact

BENCH = Path(__file__).resolve().parents[2] / "bench"
_INSERT = re.compile(r"INSERT INTO audience_contact\s*\(")


def _inserted_columns(source: str) -> list[list[str]]:
    """The column list of each raw INSERT into audience_contact (across string literals)."""
    lists = []
    for match in _INSERT.finditer(source):
        text = re.sub(r'"\s*"|"""|\s+', " ", source[match.end() : match.end() + 600])
        lists.append([c.strip(' "') for c in text.split(")", 1)[0].split(",")])
    return lists


def test_every_raw_insert_of_contacts_in_the_benchmarks_writes_the_address_key():
    inserts = {p.name: _inserted_columns(p.read_text()) for p in sorted(BENCH.glob("*.py"))}
    inserts = {name: found for name, found in inserts.items() if found}
    assert len(inserts) >= 7  # deliverability, delivery, journeys, metrics, reports, segments...
    missing = [name for name, found in inserts.items() for cols in found if "email_key" not in cols]
    assert missing == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the benches' SQL is PostgreSQL's")
@pytest.mark.django_db
@pytest.mark.parametrize("module", ["metrics", "journey_segments"])
def test_a_benchmarks_contacts_have_the_key_the_product_gives_them(module):
    importlib.import_module(f"bench.{module}")._fill(25)
    rows = list(Contact.objects.values_list("email", "email_key"))
    assert len(rows) == 25
    assert all(key == email.casefold() for email, key in rows)
