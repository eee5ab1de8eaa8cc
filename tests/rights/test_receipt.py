"""The erasure receipt reads as sentences: for a person holding each kind of data in turn (every
registered source), the receipt as emailed, as the person's page shows it and as the operator's
request page shows it has no "None", no "kept" without the date it goes, no template syntax, and
every line is a sentence."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from tests.operators import make_operator
from tidings.audience.sources import sources
from tidings.rights.actions import (
    do_create_rights_request,
    do_fulfil_rights_request,
    do_verify_rights_request,
)
from tidings.rights.tokens import verify_url

from .generators import GENERATORS, fill, new_person
from .helpers import mails_to

pytestmark = pytest.mark.django_db

DATE = re.compile(
    r"\b\d{1,2} (January|February|March|April|May|June|July|August|September"
    r"|October|November|December) \d{4}\b"
)
TEMPLATE_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")


def problems_with(line: str) -> list[str]:
    """What makes ``line`` read wrong; [] when it reads as a sentence."""
    found = []
    if re.search(r"\bNone\b|\bnull\b|\bTrue\b|\bFalse\b", line):
        found.append("a program's value")
    if TEMPLATE_SYNTAX.search(line):
        found.append("template syntax")
    if re.search(r"\bkept\b", line, re.IGNORECASE) and not DATE.search(line):
        found.append('"kept" without the date it goes')
    if re.search(r"\d{4}-\d{2}-\d{2}", line):
        found.append("a date in ISO form, not in words")
    if not (line[:1].isupper() and line.rstrip().endswith((".", "!"))):
        found.append("not a sentence")
    if re.search(r"\b[a-z]+_[a-z_]+\b", line):
        found.append("an internal name")
    return found


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_the_receipt_reads_as_sentences_for_every_kind_of_data(
    name, client, django_capture_on_commit_callbacks
):
    cache.clear()
    person = fill(new_person(), {name})
    request = do_create_rights_request("erase", person.email)
    do_verify_rights_request(request)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        done = do_fulfil_rights_request(request)

    lines = done.outcome["receipt"] + done.outcome["kept"]
    assert lines
    for line in lines:
        assert problems_with(line) == [], line

    (email,) = mails_to(person.email)
    body = email.body
    assert not TEMPLATE_SYNTAX.search(body) and "None" not in body
    for line in lines:
        assert line in body

    page = client.get(_path(verify_url(request.pk))).content.decode()
    operator = make_operator("priya", "privacy_officer")
    client.force_login(operator)
    queue_page = client.get(reverse("privacy:request", args=[request.pk])).content.decode()
    for line in lines:
        assert _html(line) in page
        assert _html(line) in queue_page


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _html(line: str) -> str:
    return line.replace("&", "&amp;").replace("'", "&#x27;").replace('"', "&quot;")


def test_every_source_with_a_hold_explains_it_in_a_sentence():
    """The receipt of a person with everything: each hold once, and a line per source erased."""
    cache.clear()
    person = fill(new_person())
    request = do_create_rights_request("erase", person.email)
    do_verify_rights_request(request)

    done = do_fulfil_rights_request(request)

    erased = {s.heading for s in sources() if s.find is not None}
    receipt = done.outcome["receipt"]
    assert {line.split(":")[0] for line in receipt} == erased
    assert len(done.outcome["kept"]) == 4  # contact details, a recent order, suppression, requests


def test_the_line_checker_rejects_what_read_wrong_before():
    assert problems_with("A one-way hash of your email address: until kept") != []
    assert problems_with("Orders: until None") != []
    assert problems_with("Your order of {{ order.created }} is kept until 3 March 2032.") != []
    assert (
        problems_with(
            "An order placed on 2026-03-03 (kept for the legal minimum): until 2032-03-03"
        )
        != []
    )
    assert problems_with("email_events: 3 erased or anonymised") != []
    assert problems_with("Your order of 3 March 2026 is kept until 3 March 2032.") == []
