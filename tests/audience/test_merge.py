"""Merging two contacts: every record of the dropped one moves to the kept one, nothing is lost,
the consent ledger stays whole, and no unique constraint breaks."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, models
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.operators import make_operator
from tests.rights.generators import GENERATORS, distinct_ids, fill, new_person
from tidings.audience import merge
from tidings.audience.actions import do_create_contact, do_subscribe, do_unsubscribe
from tidings.audience.merge import MergeError, do_merge_contacts, relations, unsupported
from tidings.audience.models import ConsentEvent, Contact, MailingList, Subscription
from tidings.audience.sources import sources
from tidings.lib.models import AuditEntry
from tidings.ops.checks.database import check_contacts_kept_apart

pytestmark = pytest.mark.django_db


def _kept_apart(older: Contact, email: str, **fields) -> Contact:
    """A contact as the upgrade leaves the newer of two that share a key: NULL key."""
    (twin,) = Contact.objects.bulk_create([Contact(email=email, email_key=None, **fields)])
    return twin


def _pointing_at(contact_id: int) -> dict[str, int]:
    return {
        f"{model._meta.label}.{name}": n
        for model, name in relations()
        if (n := models.QuerySet(model).filter(**{name: contact_id}).count())
    }


# --- every relation to Contact merges -----------------------------------------------------------
def test_every_relation_to_a_contact_has_a_merge_rule():
    """Fails when a new foreign key to Contact is added without saying how it merges
    (``tidings.audience.merge.register_merger``)."""
    assert unsupported() == []
    assert len(relations()) >= 13


def test_a_relation_without_a_merge_rule_refuses_the_merge_before_anything_changes(monkeypatch):
    zoe, _ = do_create_contact(
        {"email": "zoë@example.com", "name": "Someone"}, purpose="newsletter"
    )
    twin = _kept_apart(zoe, "ZOË@example.com")
    monkeypatch.delitem(merge._MERGERS, ("crm.Order", "contact"))

    with pytest.raises(merge.MergeNotSupported, match=r"crm\.Order\.contact"):
        do_merge_contacts(zoe, twin, actor="cli")

    assert Contact.objects.filter(pk=twin.pk).exists()


# Sources that find rows by the address (or its hash) as well as by the contact.
BY_ADDRESS = {"emails", "bounce_reports", "suppression"}


# --- a merge of two people with data in every source --------------------------------------------
def test_merging_two_people_with_every_source_leaves_nothing_at_the_dropped_one():
    distinct_ids()
    ada = fill(new_person())
    bob = fill(new_person())
    both = {s.name: len(s.export(ada.contact)) + len(s.export(bob.contact)) for s in sources()}
    ledger = list(
        ConsentEvent.objects.filter(contact__in=[ada.contact, bob.contact])
        .order_by("pk")
        .values("pk", "action", "at", "purpose", "mailing_list", "source", "wording", "ip_address")
    )
    bobs = _pointing_at(bob.contact.pk)
    assert len(bobs) == len(relations())  # bob has something in every relation
    adas = {s.name: len(s.export(ada.contact)) for s in sources()}
    name_before = Contact.objects.get(pk=ada.contact.pk).name
    Contact.objects.filter(pk=ada.contact.pk).update(job_title="")  # a gap bob's fills
    bobs_title = Contact.objects.get(pk=bob.contact.pk).job_title

    result = do_merge_contacts(
        ada.contact,
        bob.contact,
        actor=make_operator("privacy-officer", "owner"),
        different_addresses=True,
    )
    connection.check_constraints()

    assert not Contact.objects.filter(pk=bob.contact.pk).exists()
    assert _pointing_at(bob.contact.pk) == {}
    kept = Contact.objects.get(pk=ada.contact.pk)
    assert kept.email == ada.email and kept.name == name_before  # never overwritten
    assert kept.job_title == bobs_title != ""  # filled from bob's
    # The ledger: every event still there, now all ada's, nothing else changed.
    after = list(
        ConsentEvent.objects.filter(pk__in=[e["pk"] for e in ledger])
        .order_by("pk")
        .values("pk", "action", "at", "purpose", "mailing_list", "source", "wording", "ip_address")
    )
    assert after == ledger
    assert set(
        ConsentEvent.objects.filter(pk__in=[e["pk"] for e in ledger]).values_list(
            "contact_id", flat=True
        )
    ) == {ada.contact.pk}
    # Every source's rows are the kept contact's: both people's, but for the one subscription
    # per list (both were on the same two lists) and the person's own row.
    for source in sources():
        rows = len(source.export(kept))
        if source.name == "contact":
            assert rows == 1
        elif source.name == "subscriptions":
            assert rows == 2 and result.counts["subscriptions_dropped"] == 2
        elif source.name == "journey segment matches":
            assert rows >= 1
        elif source.name == "pending preferences":
            # Bob's waited for a click on a link naming bob, who is gone: ada's own stays.
            assert rows == 1 and result.counts["pending_preferences_dropped"] == 1
        elif source.name == "activity_log":
            assert rows == both[source.name] + 1  # and the merge's own entry
        elif source.name in BY_ADDRESS:
            # Rows found by the address alone stay with bob's address (a different one).
            assert adas[source.name] <= rows <= both[source.name]
        else:
            assert rows == both[source.name], source.name
    entry = AuditEntry.objects.filter(action="contact.merged").get()
    assert entry.details["contact"] == ada.contact.pk and entry.details["merged"] == bob.contact.pk
    assert entry.details["moved"]["crm.order.contact"] == bobs["crm.Order.contact"]
    assert bob.email not in str(entry.details) and bob.name not in str(entry.details)


def test_the_generators_cover_every_source():
    assert set(GENERATORS) == {s.name for s in sources()}


# --- kept-apart twins -----------------------------------------------------------------------------
def test_merging_a_kept_apart_twin_gives_the_survivor_the_key():
    zoe, _ = do_create_contact(
        {"email": "zoë@example.com", "name": "Someone"}, purpose="newsletter"
    )
    twin = _kept_apart(zoe, "ZOË@example.com", name="Zoë", attributes={"a": 1, "b": 1})
    Contact.objects.filter(pk=zoe.pk).update(attributes={"a": 2, "c": 3})

    do_merge_contacts(twin, zoe, actor="cli")

    twin.refresh_from_db()
    assert twin.email_key == "zoë@example.com" and twin.name == "Zoë"
    assert twin.attributes == {"a": 1, "b": 1, "c": 3}  # keep wins
    assert Contact.objects.with_email("zoë@example.com").get().pk == twin.pk


def test_two_different_addresses_merge_only_when_asked_explicitly():
    ada, _ = do_create_contact(
        {"email": "ada@example.com", "name": "Someone"}, purpose="newsletter"
    )
    bob, _ = do_create_contact(
        {"email": "bob@example.com", "name": "Someone"}, purpose="newsletter"
    )

    with pytest.raises(MergeError, match="different addresses") as caught:
        do_merge_contacts(ada, bob, actor="cli")
    assert "@" not in str(caught.value)
    with pytest.raises(MergeError, match="itself"):
        do_merge_contacts(ada, ada, actor="cli")
    assert Contact.objects.count() == 2

    do_merge_contacts(ada, bob, actor="cli", different_addresses=True)
    assert list(Contact.objects.values_list("email", flat=True)) == ["ada@example.com"]


# --- subscriptions to one list --------------------------------------------------------------------
@pytest.fixture
def news():
    return MailingList.objects.create(name="News", topic="product news")


def _pair():
    zoe, _ = do_create_contact(
        {"email": "zoë@example.com", "name": "Someone"}, purpose="newsletter"
    )
    twin = _kept_apart(zoe, "ZOË@example.com")
    return zoe, twin


def test_of_two_confirmed_subscriptions_the_earlier_confirmed_stays(news):
    zoe, twin = _pair()
    early = timezone.now() - timedelta(days=30)
    do_subscribe(twin, news, source="form", wording_text="Yes", confirmed=True)
    do_subscribe(zoe, news, source="form", wording_text="Yes", confirmed=True)
    Subscription.objects.filter(contact=twin).update(confirmed_at=early)
    twins_sub = Subscription.objects.get(contact=twin)

    do_merge_contacts(zoe, twin, actor="cli")

    sub = Subscription.objects.get()
    assert sub.pk == twins_sub.pk and sub.contact_id == zoe.pk and sub.confirmed_at == early


def test_a_later_unsubscribe_is_never_resurrected(news):
    zoe, twin = _pair()
    do_subscribe(zoe, news, source="form", wording_text="Yes", confirmed=True)
    do_subscribe(twin, news, source="form", wording_text="Yes", confirmed=True)
    do_unsubscribe(twin, news, source="unsubscribe")  # the latest word: no

    do_merge_contacts(zoe, twin, actor="cli")

    sub = Subscription.objects.get()
    assert sub.contact_id == zoe.pk and sub.status == Subscription.Status.UNSUBSCRIBED
    assert ConsentEvent.objects.filter(contact=zoe).count() == 3


def test_a_later_confirmed_consent_wins_over_an_older_unsubscribe(news):
    zoe, twin = _pair()
    do_subscribe(twin, news, source="form", wording_text="Yes", confirmed=True)
    do_unsubscribe(twin, news, source="unsubscribe")
    do_subscribe(zoe, news, source="form", wording_text="Yes", confirmed=True)  # later: yes

    do_merge_contacts(twin, zoe, actor="cli")  # either way round

    sub = Subscription.objects.get()
    assert sub.contact_id == twin.pk and sub.status == Subscription.Status.CONFIRMED


# --- the command ----------------------------------------------------------------------------------
def _command(*args: str) -> str:
    out = io.StringIO()
    call_command("audience", "merge-contacts", *args, stdout=out)
    return out.getvalue()


def test_the_command_says_what_moves_and_merges_only_with_yes(news):
    zoe, twin = _pair()
    do_subscribe(twin, news, source="form", wording_text="Yes", confirmed=True)

    said = _command(str(zoe.pk), str(twin.pk))

    assert "audience.subscription.contact: 1" in said and "--yes" in said
    assert "@" not in said
    assert Contact.objects.filter(pk=twin.pk).exists()

    said = _command(str(zoe.pk), str(twin.pk), "--yes")

    assert f"Merged contact #{twin.pk} into #{zoe.pk}" in said
    assert not Contact.objects.filter(pk=twin.pk).exists()
    assert Subscription.objects.get().contact_id == zoe.pk
    assert AuditEntry.objects.get(action="contact.merged").actor_label == "cli"


@pytest.mark.parametrize("yes", [(), ("--yes",)])
def test_the_command_refuses_in_one_line(yes):
    ada, _ = do_create_contact({"email": "ada@example.com", "name": "Ada"}, purpose="newsletter")
    bob, _ = do_create_contact({"email": "bob@example.com", "name": "Bob"}, purpose="newsletter")

    for args, said in [
        ((str(ada.pk), "999999"), "no contact #999999"),
        ((str(ada.pk), str(ada.pk)), "itself"),
        ((str(ada.pk), str(bob.pk)), "different addresses"),
    ]:
        with pytest.raises(CommandError, match=said) as caught:
            _command(*args, *yes)
        assert "\n" not in str(caught.value) and "@" not in str(caught.value)
    assert Contact.objects.count() == 2


def test_the_command_merges_different_addresses_when_told(news):
    ada, _ = do_create_contact({"email": "ada@example.com", "name": "Ada"}, purpose="newsletter")
    bob, _ = do_create_contact({"email": "bob@example.com", "name": "Bob"}, purpose="newsletter")

    assert "go on no list" in _command(str(ada.pk), str(bob.pk), "--different-addresses")
    _command(str(ada.pk), str(bob.pk), "--different-addresses", "--yes")

    assert list(Contact.objects.values_list("pk", flat=True)) == [ada.pk]


# --- the page -------------------------------------------------------------------------------------
def test_the_doctor_names_the_command():
    _pair()

    finding = check_contacts_kept_apart()

    assert "tidings audience merge-contacts" in finding.fix and "Merge with" in finding.fix


def test_the_page_offers_the_kept_apart_twin_and_merges_it(client, news):
    zoe, twin = _pair()
    do_subscribe(twin, news, source="form", wording_text="Yes", confirmed=True)
    client.force_login(make_operator("editor1", "editor"))
    url = reverse("audience:contact-merge", args=[zoe.pk])

    assert url in client.get(reverse("audience:contact", args=[zoe.pk])).content.decode()
    page = client.get(url).content.decode()
    assert f"Contact #{twin.pk}" in page and f'value="{twin.pk}"' in page

    response = client.post(url, {"other": twin.pk})  # not confirmed
    assert response.status_code == 200 and Contact.objects.filter(pk=twin.pk).exists()

    response = client.post(url, {"other": twin.pk, "confirm": "on"})

    assert response.status_code == 302
    assert not Contact.objects.filter(pk=twin.pk).exists()
    assert Subscription.objects.get().contact_id == zoe.pk
    assert AuditEntry.objects.get(action="contact.merged").actor.username == "editor1"


def test_the_page_finds_the_other_contact_by_address_name_or_id_to_pick(client):
    ada, _ = do_create_contact({"email": "ada@example.com", "name": "Ada"}, purpose="newsletter")
    work, _ = do_create_contact(
        {"email": "a.lovelace@engines.example", "name": "Ada Lovelace"}, purpose="newsletter"
    )
    do_create_contact({"email": "bob@example.com", "name": "Bob"}, purpose="newsletter")
    client.force_login(make_operator("editor1", "editor"))
    url = reverse("audience:contact-merge", args=[ada.pk])

    empty = client.get(url).content.decode()
    assert 'role="search"' in empty and 'name="q"' in empty and 'type="radio"' not in empty
    for query in ["lovelace", "a.love", "A.LOVELACE@engines", f"#{work.pk}", str(work.pk)]:
        page = client.get(url, {"q": query}).content.decode()
        radios = re.findall(r'type="radio" name="other" value="(\d+)"', page)
        assert radios == [str(work.pk)], query
        assert "a.lovelace@engines.example" in page, query
    assert client.get(url, {"q": "ada@"}).content.decode().count('type="radio"') == 0  # itself
    assert "No other contact matches" in client.get(url, {"q": "nobody"}).content.decode()

    response = client.post(
        f"{url}?q=lovelace",
        {"other": work.pk, "different_addresses": "on", "confirm": "on"},
    )

    assert response.status_code == 302
    assert not Contact.objects.filter(pk=work.pk).exists()
    assert Contact.objects.filter(pk=ada.pk).exists()


def test_the_page_lists_at_most_twenty_matches_and_says_to_narrow_them(client):
    keep, _ = do_create_contact({"email": "k@example.com", "name": "Keep"}, purpose="newsletter")
    for i in range(25):
        do_create_contact({"email": f"p{i}@example.org", "name": "Pat"}, purpose="newsletter")
    client.force_login(make_operator("editor1", "editor"))

    page = client.get(reverse("audience:contact-merge", args=[keep.pk]), {"q": "pat"})

    assert page.content.decode().count('type="radio"') == 20
    assert "narrow them" in page.content.decode()


def test_the_page_shows_refusals_as_form_errors(client):
    ada, _ = do_create_contact({"email": "ada@example.com", "name": "Ada"}, purpose="newsletter")
    bob, _ = do_create_contact({"email": "bob@example.com", "name": "Bob"}, purpose="newsletter")
    client.force_login(make_operator("editor1", "editor"))
    url = reverse("audience:contact-merge", args=[ada.pk])

    for other, said in [
        (bob.pk, "different addresses"),
        (ada.pk, "itself"),
        (999999, "no contact"),
    ]:
        page = client.post(url, {"other": other, "confirm": "on"}).content.decode()
        assert said in page
    assert Contact.objects.count() == 2


def test_the_page_needs_the_people_permission_and_a_csrf_token():
    zoe, twin = _pair()
    url = reverse("audience:contact-merge", args=[zoe.pk])
    analyst = Client()
    analyst.force_login(make_operator("analyst1", "analyst"))
    assert analyst.get(url).status_code == 403
    assert analyst.post(url, {"other": twin.pk, "confirm": "on"}).status_code == 403

    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(make_operator("editor1", "editor"))
    assert csrf.post(url, {"other": twin.pk, "confirm": "on"}).status_code == 403
    assert Contact.objects.filter(pk=twin.pk).exists()


def test_erasing_the_merged_person_leaves_neither_id_in_the_merge_entry():
    from tidings.rights.actions import do_erase_contact

    zoe, twin = _pair()
    do_merge_contacts(zoe, twin, actor="cli")

    do_erase_contact(zoe, actor=make_operator("privacy-officer", "owner"))

    details = AuditEntry.objects.get(action="contact.merged").details
    assert details["contact"] is None and details["merged"] is None


def test_two_deliveries_of_one_campaign_become_one_with_both_events():
    from tidings.campaigns.events import record_delivery_event
    from tidings.campaigns.models import Campaign, Delivery, Event, TrackedLink

    zoe, twin = _pair()
    campaign = Campaign.objects.create(
        name="Launch", subject="Hi", topic="product news", body="Hi", status="finished"
    )
    sent = timezone.now() - timedelta(days=3)
    mine, theirs = (
        Delivery.objects.create(campaign=campaign, contact=c, status="sent", sent_at=sent)
        for c in (zoe, twin)
    )
    TrackedLink.objects.create(campaign=campaign, index=0, url="https://example.co.uk/a")
    record_delivery_event(theirs.pk, "click", link=0)
    assert Contact.objects.get(pk=zoe.pk).last_clicked_at is None

    result = do_merge_contacts(zoe, twin, actor="cli")

    assert list(Delivery.objects.values_list("pk", "contact_id")) == [(mine.pk, zoe.pk)]
    assert set(Event.objects.values_list("delivery_id", flat=True)) == {mine.pk}
    assert result.counts["deliveries_folded"] == 1
    assert Contact.objects.get(pk=zoe.pk).last_clicked_at is not None  # recomputed
