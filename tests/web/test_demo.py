"""`tidings demo` loads a usable installation, and loading it again adds nothing twice."""

import pytest
from django.contrib.auth import authenticate

from tidings.audience.models import ConsentEvent, Contact, MailingList, SignupForm, Subscription
from tidings.campaigns.models import Campaign, Sender
from tidings.web.demo import load_demo

pytestmark = pytest.mark.django_db


def test_the_demo_has_an_operator_lists_people_and_a_draft_campaign():
    result = load_demo()
    assert authenticate(username=result.username, password=result.password).is_superuser
    assert MailingList.objects.count() == 3  # one per topic of the example policy
    assert Contact.objects.count() == result.contacts == 12
    assert Subscription.objects.filter(status="confirmed").exists()
    assert ConsentEvent.objects.count() == Subscription.objects.count()
    assert Sender.objects.get().verified
    assert Campaign.objects.get().status == "draft"
    assert SignupForm.objects.get().slug == "newsletter"


def test_loading_the_demo_again_adds_nothing_but_a_new_password():
    first = load_demo()
    counts = (Contact.objects.count(), Subscription.objects.count(), ConsentEvent.objects.count())
    second = load_demo()
    assert counts == (
        Contact.objects.count(),
        Subscription.objects.count(),
        ConsentEvent.objects.count(),
    )
    assert first.password != second.password
    assert authenticate(username=second.username, password=second.password)


def test_the_demo_offers_demo_booking_times_without_any_setting_up(client):
    from datetime import timedelta

    from django.utils import timezone

    from tidings.booking.actions import free_slots

    load_demo()
    # The coming fortnight always holds weekdays, whatever day the demo is loaded on.
    slots = free_slots(now=timezone.now())
    assert slots and slots[0].start < timezone.now() + timedelta(days=14)
    page = client.get("/demo/").text
    assert 'type="radio" name="slot"' in page
    assert "There are no free times" not in page


def test_the_demo_has_a_template_made_of_blocks():
    from tidings.campaigns.models import Template
    from tidings.campaigns.rendering import CompiledMessage

    load_demo()
    template = Template.objects.get(format="blocks")
    CompiledMessage.for_template(template)  # compiles: raises if not


CHARITY_POLICY = """
version = "2026-11-01"
[controller]
name = "Riverside Food Bank"
email = "hello@riverside.example.org"
address = "12 Mill Lane, Leeds"
supervisory_authority = { name = "ICO", url = "https://ico.org.uk" }
[categories]
identity = ["name"]
contact = ["email", "postcode"]
[purposes.newsletter]
title = "Sending our supporter updates"
lawful_basis = "consent"
collects = { required = ["email"], optional = ["name", "postcode"] }
record = "subscription"
double_opt_in = true
[marketing]
channels = ["email"]
topics = ["appeals"]
[retention.subscription]
keep = "while subscribed"
[rights]
contact = "hello@riverside.example.org"
"""


def test_the_demo_loads_with_a_policy_whose_newsletter_does_not_ask_for_a_company(
    tmp_path, settings
):
    # `TIDINGS_POLICY=charity.toml make demo` stopped with a traceback: the demo's sign-up
    # form asked for "company", which this newsletter purpose does not collect.
    file = tmp_path / "policy.toml"
    file.write_text(CHARITY_POLICY, encoding="utf-8")
    settings.TIDINGS_POLICY = file
    load_demo()
    form = SignupForm.objects.get()
    assert form.optional_fields == []
    assert Contact.objects.filter(company="").count() == Contact.objects.count() == 12


def test_the_demo_campaign_comes_from_the_demos_own_from_address(settings):
    """`make demo` sets TIDINGS_FROM_EMAIL (newsletter@example.co.uk): the draft campaign's
    sender is that address, so its mail and the demo's confirmations come from one address."""
    settings.DEFAULT_FROM_EMAIL = "newsletter@example.co.uk"
    load_demo()
    assert Campaign.objects.get().sender.email == "newsletter@example.co.uk"


def test_without_a_from_address_the_demo_campaign_has_the_make_demo_sender(settings):
    settings.DEFAULT_FROM_EMAIL = "newsletter@localhost"  # the production default
    load_demo()
    assert Sender.objects.get().email == "newsletter@example.co.uk"


def test_the_demo_run_by_hand_mails_from_the_same_address_as_make_demo(
    settings, monkeypatch, capsys
):
    """`tidings demo` without `make` (no TIDINGS_FROM_EMAIL): its campaign came from
    newsletter@example.com and its own mail from newsletter@localhost, where `make demo` uses
    newsletter@example.co.uk for both.  Now the same address, and it says how to serve so."""
    import os
    import re
    from pathlib import Path

    from django.core.management import call_command

    from tidings.web.demo import DEMO_FROM_EMAIL

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^DEMO_FROM_EMAIL \?= (\S+)$", makefile, re.M).group(1) == DEMO_FROM_EMAIL
    monkeypatch.setenv("TIDINGS_FROM_EMAIL", "")  # recorded, so it is restored after
    monkeypatch.delenv("TIDINGS_FROM_EMAIL")
    monkeypatch.setenv("TIDINGS_BASE_URL", "http://127.0.0.1:8135")
    settings.DEFAULT_FROM_EMAIL = settings.SERVER_EMAIL = "newsletter@localhost"
    call_command("demo", port=8135)
    assert Sender.objects.get().email == "newsletter@example.co.uk"
    assert settings.DEFAULT_FROM_EMAIL == "newsletter@example.co.uk"
    assert os.environ["TIDINGS_FROM_EMAIL"] == "newsletter@example.co.uk"  # a worker it starts
    out = capsys.readouterr().out
    assert "Its mail comes from newsletter@example.co.uk" in out
    assert "TIDINGS_FROM_EMAIL=newsletter@example.co.uk tidings serve" in out
    # A tester's own address is left alone.
    monkeypatch.setenv("TIDINGS_FROM_EMAIL", "news@mine.example")
    settings.DEFAULT_FROM_EMAIL = "news@mine.example"
    call_command("demo", port=8135)
    assert "Its mail comes from news@mine.example" in capsys.readouterr().out
