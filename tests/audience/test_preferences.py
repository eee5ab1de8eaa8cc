"""The preference centre: a personal, signed page (no login) where every change is recorded."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from tests.audience.public_helpers import (
    audit_page,
    link_in,
    mails_to,
    make_list,
    next_ip,
    write_policy,
)
from tidings.audience.actions import do_create_contact, do_subscribe, do_unsubscribe_all
from tidings.audience.consent import current_state, tracking_allowed
from tidings.audience.consent_records import set_channels
from tidings.audience.emails import email_hmac
from tidings.audience.models import ConsentEvent, Contact, Subscription, Suppression
from tidings.audience.suppression import do_add_suppressions
from tidings.audience.tokens import preferences_url
from tidings.lib.models import AuditEntry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("public_pages")]


@pytest.fixture
def ada(news):
    contact, _ = do_create_contact(
        {"name": "Ada Lovelace", "email": "ada@example.com", "company": "Engines"},
        purpose="newsletter",
    )
    do_subscribe(contact, news, source="form", wording_text="Yes please", confirmed=True)
    return contact


def page_of(contact) -> str:
    return preferences_url(contact).removeprefix(django_settings.TIDINGS_BASE_URL)


def choices(name="Ada Lovelace", company="Engines", lists=(), phone_ok=False, tracking=True):
    data = {"name": name, "company": company, "phone": "", "job_title": ""}
    data |= {f"list_{ml.pk}": "on" for ml in lists}
    if phone_ok:
        data["channel_phone"] = "on"
    if tracking:
        data["tracking"] = "on"
    return data


def new_events(before: int):
    return list(ConsentEvent.objects.filter(pk__gt=before).order_by("pk"))


def last_event_id() -> int:
    return ConsentEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


# --- the page ---------------------------------------------------------------------------------
def test_the_page_opens_from_its_link_without_signing_in_and_shows_what_the_person_has(
    client, ada, news, events
):
    response = client.get(page_of(ada))

    assert response.status_code == 200
    html = response.content.decode()
    page = audit_page(html)
    boxes = {i["name"]: "checked" in i for i in page.inputs if i.get("type") == "checkbox"}
    assert boxes == {
        f"list_{news.pk}": True,
        f"list_{events.pk}": False,
        "channel_phone": False,
        "channel_post": False,
        "tracking": True,
    }
    assert 'value="Engines"' in html
    assert "email" not in {i["name"] for i in page.inputs}  # the address is not editable here
    assert "Unsubscribe from everything" in html
    assert 'href="/rights/"' in html  # the rights request form
    assert "no-store" in response["Cache-Control"]
    assert page.h1 == 1 and page.scripts == 0 and page.unlabelled() == []


def test_only_public_lists_and_lists_the_person_is_on_are_shown(client, ada, news):
    staff = make_list("Staff briefing", "product news", is_public=False)
    partners = make_list("Partners", "training", is_public=False)
    make_list("Old news", "product news", closed_at=timezone.now())
    do_subscribe(ada, staff, source="operator", wording_text="x", confirmed=True)

    html = client.get(page_of(ada)).content.decode()

    assert "Staff briefing" in html and "Product news" in html
    assert partners.name not in html and "Old news" not in html


def test_a_link_for_another_purpose_does_not_open_the_page(client, ada):
    from tidings.audience.tokens import make_unsubscribe_token

    response = client.get(f"/p/{make_unsubscribe_token(ada.pk)}")

    assert response.status_code == 404


# --- changes ----------------------------------------------------------------------------------
def test_leaving_a_list_is_at_once_and_joining_one_waits_for_the_click_in_the_mailbox(
    client, ada, news, events
):
    before = last_event_id()
    page = page_of(ada)  # once: the signed link carries the time it was made

    response = client.post(page, choices(lists=[events]))

    assert response.status_code == 303
    assert response["Location"] == page + "?done=confirm"
    statuses = dict(Subscription.objects.values_list("mailing_list", "status"))
    assert statuses == {news.pk: "unsubscribed"}  # events: nothing until the person confirms
    assert Subscription.objects.get(mailing_list=news).unsubscribed_at is not None
    assert [(e.mailing_list, e.action) for e in new_events(before)] == [(news, "withdrawn")]
    answer = client.get(response["Location"]).content.decode()
    assert "happens only when you press the button in it" in answer
    assert "<li>Join Events</li>" in answer  # what waits, in plain words

    [mail] = mails_to("ada@example.com")
    confirm = link_in(mail, "/c/")
    client.post(confirm)

    assert Subscription.objects.get(mailing_list=events).status == "confirmed"
    changes = [(e.mailing_list, e.action, e.source) for e in new_events(before)]
    assert changes[0] == (news, "withdrawn", "preferences")
    assert (events, "granted", "confirmation") in changes
    granted = ConsentEvent.objects.get(mailing_list=events, action="granted")
    assert "You can change this at any time on this page" in granted.wording.text


def test_a_forwarded_preference_link_cannot_sign_the_person_up_or_undo_their_unsubscribe(
    ada, news, events
):
    """Ada unsubscribed from everything; a colleague she once forwarded a newsletter to opens
    its preference link and ticks lists.  Nothing is joined, nothing is granted in Ada's name,
    and her address stays on the do-not-email list; only a confirmation to her mailbox goes."""
    page = page_of(ada)
    do_unsubscribe_all(ada, source="unsubscribe")
    before = last_event_id()
    colleague = Client(REMOTE_ADDR=next_ip())

    response = colleague.post(page, choices(lists=[news, events]))

    assert response.status_code == 303
    assert set(Subscription.objects.values_list("status", flat=True)) == {"unsubscribed"}
    assert [e for e in new_events(before) if e.action == "granted"] == []
    assert Suppression.objects.get(email_hmac=email_hmac(ada.email)).reason == "unsubscribed"
    [mail] = mails_to("ada@example.com")
    assert "/c/" in mail.body("plain")


def test_saving_the_page_unchanged_writes_nothing(client, ada, news):
    before = last_event_id()
    audits = AuditEntry.objects.count()

    client.post(page_of(ada), choices(lists=[news]))

    assert new_events(before) == []
    assert AuditEntry.objects.count() == audits


def confirm_by_mail(client, email="ada@example.com"):
    """Press the button behind the newest confirmation link in ``email``'s mailbox."""
    return client.post(link_in(mails_to(email)[-1], "/c/"))


def test_phone_and_post_consent_wait_for_the_mailbox_and_withdrawing_is_at_once(client, ada, news):
    before = last_event_id()
    response = client.post(page_of(ada), choices(lists=[news], phone_ok=True))

    assert response["Location"].endswith("?done=confirm")
    assert not current_state(ada).channel_granted("phone")  # not from the page alone
    assert new_events(before) == []
    [mail] = mails_to("ada@example.com")
    assert "You may telephone me about these topics" in mail.body("plain")
    page = client.get(response["Location"]).content.decode()
    assert "Waiting for your confirmation" in page
    assert "<li>You may telephone me about these topics</li>" in page
    # It shows ticked, and its box says why it is not granted yet.
    boxes = {
        i["name"]: "checked" in i for i in audit_page(page).inputs if i.get("type") == "checkbox"
    }
    assert boxes["channel_phone"] is True
    assert "You may telephone me about these topics (awaiting your confirmation)" in page

    confirm_by_mail(client)

    assert current_state(ada).channel_granted("phone")
    assert not current_state(ada).channel_granted("post")
    [grant] = new_events(before)
    assert (grant.channel, grant.action, grant.source) == ("phone", "granted", "confirmation")
    assert "You can change this at any time on this page" in grant.wording.text  # the proof

    client.post(page_of(ada), choices(lists=[news], phone_ok=False))

    phone = ConsentEvent.objects.filter(purpose="marketing", channel="phone").order_by("pk")
    assert [(e.action, e.source) for e in phone] == [
        ("granted", "confirmation"),
        ("withdrawn", "preferences"),
    ]
    assert not current_state(ada).channel_granted("phone")
    assert len(mails_to("ada@example.com")) == 1  # withdrawing needs no email


def test_what_still_waits_for_the_mailbox_is_not_shown_in_the_green_of_done(client, ada, news):
    response = client.post(page_of(ada), choices(lists=[news], phone_ok=True))

    page = client.get(response["Location"]).content.decode()

    # Green says "done"; this is not done until the button in the email is pressed.
    assert '<div class="message message-warning" role="status"><p>We have sent you' in page
    assert '<section class="message message-warning" aria-labelledby="waiting-heading">' in page


def test_tracking_is_refused_at_once_and_allowed_again_only_from_the_mailbox(client, ada, news):
    assert tracking_allowed(ada)

    client.post(page_of(ada), choices(lists=[news], tracking=False))
    refused = tracking_allowed(ada)
    client.post(page_of(ada), choices(lists=[news], tracking=True))
    still_refused = tracking_allowed(ada)
    confirm_by_mail(client)

    assert refused is False and still_refused is False and tracking_allowed(ada) is True
    tracking = ConsentEvent.objects.filter(purpose="newsletter.tracking").order_by("pk")
    assert [(e.channel, e.action, e.source) for e in tracking] == [
        ("email", "withdrawn", "preferences"),
        ("email", "granted", "confirmation"),
    ]


def test_tracking_is_not_offered_when_the_policy_does_not_track(
    client, ada, news, tmp_path, settings
):
    write_policy(tmp_path, settings, ('tracking = "opens and clicks, to improve our emails"', ""))

    page = audit_page(client.get(page_of(ada)).content.decode())

    assert "tracking" not in {i["name"] for i in page.inputs}
    assert tracking_allowed(ada) is False


def test_name_and_company_change_from_the_mailbox_but_never_the_address_or_forbidden_fields(
    client, ada, news
):
    data = choices(name="Ada King", company="Analytical Engines", lists=[news])
    data |= {"email": "eve@example.com", "work_address": "1 Evil St", "attributes": "{}"}

    response = client.post(page_of(ada), data)

    ada.refresh_from_db()
    assert (ada.name, ada.company) == ("Ada Lovelace", "Engines")  # not from the page alone
    page = client.get(response["Location"]).content.decode()
    assert "<li>Name: Ada King</li>" in page and "<li>Company: Analytical Engines</li>" in page
    assert 'value="Ada King"' in page  # what waits shows as typed: saving again keeps it
    confirm_page = client.get(link_in(mails_to("ada@example.com")[-1], "/c/")).content.decode()
    assert "<li>Name: Ada King</li>" in confirm_page
    assert "Yes, make these changes" in confirm_page

    done = confirm_by_mail(client)

    ada.refresh_from_db()
    assert (ada.name, ada.company, ada.email) == (
        "Ada King",
        "Analytical Engines",
        "ada@example.com",
    )
    assert ada.work_address == "" and ada.attributes == {}
    entry = AuditEntry.objects.get(action="contact.updated")
    assert entry.details == {"fields": ["name", "company"], "source": "confirmation"}
    assert done["Location"].endswith("?done=changed")
    answer = client.get(done["Location"]).content.decode()
    assert "Your changes are made" in answer
    assert f'<a href="{preferences_url(ada)}">Back to your email preferences</a>' in answer
    assert "Waiting for your confirmation" not in client.get(page_of(ada)).content.decode()


def test_a_click_that_only_makes_changes_for_someone_already_on_its_lists_says_so(
    client, ada, news, events
):
    client.post(page_of(ada), choices(lists=[news, events], phone_ok=True))
    # Meanwhile she joined Events another way (a sign-up form's link, say).
    do_subscribe(ada, events, source="form", wording_text="Yes", confirmed=True)

    done = confirm_by_mail(client)

    assert current_state(ada).channel_granted("phone")
    assert done["Location"].endswith("?done=changed")
    answer = client.get(done["Location"]).content.decode()
    assert "Your changes are made" in answer
    assert "You are subscribed" not in answer


def test_a_click_whose_changes_were_all_made_another_way_meanwhile_does_not_say_subscribed(
    client, ada, news, events
):
    client.post(page_of(ada), choices(lists=[news, events], phone_ok=True))
    # Meanwhile she joined Events and agreed to telephone calls another way (a form's link).
    do_subscribe(ada, events, source="form", wording_text="Yes", confirmed=True)
    set_channels(ada, {"phone": True}, source="form")

    done = confirm_by_mail(client)

    assert done["Location"].endswith("?done=already")
    answer = client.get(done["Location"]).content.decode()
    assert "You are subscribed" not in answer
    assert "<h1>Your changes were already made</h1>" in answer


def test_a_used_link_says_its_changes_were_made_and_pressing_again_records_nothing(
    client, ada, news
):
    client.post(page_of(ada), choices(lists=[news], phone_ok=True))
    link = link_in(mails_to("ada@example.com")[-1], "/c/")
    assert "Your changes are made" in client.post(link, follow=True).content.decode()
    events, entries = ConsentEvent.objects.count(), AuditEntry.objects.count()

    reopened = client.get(link).content.decode()

    assert "<h1>Your changes were already made</h1>" in reopened
    assert "<button" not in reopened  # nothing to press: nothing happens again
    again = client.post(link)
    assert again["Location"].endswith("?done=already")
    answer = client.get(again["Location"]).content.decode()
    assert "<h1>Your changes were already made</h1>" in answer
    assert (ConsentEvent.objects.count(), AuditEntry.objects.count()) == (events, entries)


def test_a_link_whose_changes_were_replaced_says_there_is_nothing_to_confirm(client, ada, news):
    client.post(page_of(ada), choices(lists=[news], phone_ok=True))
    first = link_in(mails_to("ada@example.com")[-1], "/c/")
    client.post(page_of(ada), choices(lists=[news], phone_ok=False))  # taken back

    page = client.get(first).content.decode()

    assert "<h1>Nothing to confirm</h1>" in page
    assert "<button" not in page
    assert "made" not in page.split("<h1>")[1]  # never "your changes are made"


def test_a_forwarded_link_cannot_grant_consent_or_change_the_details_in_the_persons_name(ada, news):
    before = last_event_id()
    colleague = Client(REMOTE_ADDR=next_ip())

    colleague.post(
        page_of(ada), choices(name="Not Ada", company="Acme", lists=[news], phone_ok=True)
    )

    ada.refresh_from_db()
    assert (ada.name, ada.company) == ("Ada Lovelace", "Engines")
    assert new_events(before) == []
    assert not current_state(ada).channel_granted("phone")
    [mail] = mails_to("ada@example.com")
    assert "Name: Not Ada" in mail.body("plain")  # Ada sees what she would confirm
    assert "If you did not ask for this, ignore this email: nothing changes" in mail.body("plain")


def test_a_later_save_replaces_what_waits_and_unticking_takes_it_back(client, ada, news):
    client.post(page_of(ada), choices(name="Ada King", lists=[news]))
    first = link_in(mails_to("ada@example.com")[-1], "/c/")
    client.post(page_of(ada), choices(name="Ada Byron", lists=[news]))
    second = link_in(mails_to("ada@example.com")[-1], "/c/")
    resaved = client.post(page_of(ada), choices(name="Ada Byron", lists=[news]))

    assert resaved["Location"].endswith("?done=waiting")  # the same again: no third email
    assert len(mails_to("ada@example.com")) == 2
    client.post(first)
    ada.refresh_from_db()
    assert ada.name == "Ada Lovelace"  # the replaced request's link changes nothing
    client.post(second)
    ada.refresh_from_db()
    assert ada.name == "Ada Byron"

    client.post(page_of(ada), choices(name="Ada Byron", lists=[news], phone_ok=True))
    link = link_in(mails_to("ada@example.com")[-1], "/c/")
    client.post(page_of(ada), choices(name="Ada Byron", lists=[news], phone_ok=False))
    client.post(link)

    assert not current_state(ada).channel_granted("phone")
    assert "Waiting for your confirmation" not in client.get(page_of(ada)).content.decode()


def test_a_save_when_several_confirmations_went_recently_says_no_email_was_sent(client, ada, news):
    for name in ("Ada King", "Ada Byron", "Ada Lovelace-King"):
        client.post(page_of(ada), choices(name=name, lists=[news]))
    earlier = link_in(mails_to("ada@example.com")[-1], "/c/")

    held = client.post(page_of(ada), choices(name="Countess Ada", lists=[news]))

    assert held["Location"].endswith("?done=held")
    assert len(mails_to("ada@example.com")) == 3  # the per-address limit: 3 an hour
    page = client.get(held["Location"]).content.decode()
    assert "We have sent you an email" not in page
    assert "We have not sent you a new email: several have been sent" in page
    assert "The link in the email we sent before still works" in page
    assert "please try again later" in page
    assert "<li>Name: Ada Lovelace-King</li>" in page  # what waits is still the earlier email's
    client.post(earlier)
    ada.refresh_from_db()
    assert ada.name == "Ada Lovelace-King"  # ... and its link still makes it


def test_a_required_name_cannot_be_emptied(client, ada, news):
    response = client.post(page_of(ada), choices(name="", lists=[]))

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode() or "errorlist" in response.content.decode()
    ada.refresh_from_db()
    assert ada.name == "Ada Lovelace"
    assert Subscription.objects.get().status == "confirmed"


def test_ticking_a_list_awaiting_confirmation_sends_a_fresh_confirmation(client, ada, news, events):
    do_subscribe(ada, events, source="form", wording_text="Yes", confirmed=False)
    html = client.get(page_of(ada)).content.decode()
    assert "Events (awaiting your confirmation)" in html

    client.post(page_of(ada), choices(lists=[news, events]))
    assert Subscription.objects.get(mailing_list=events).status == "pending"
    mail = mails_to("ada@example.com")[-1]
    # She stays on Product news whatever she does with this email: it must not say otherwise.
    assert "deleted in a few days" not in mail.body("plain")
    assert "nothing else changes" in mail.body("plain")
    client.post(link_in(mail, "/c/"))

    assert Subscription.objects.get(mailing_list=events).status == "confirmed"


def test_unsubscribing_from_everything_leaves_every_list_and_channel(client, ada, news, events):
    do_subscribe(ada, events, source="form", wording_text="Yes", confirmed=True)
    client.post(page_of(ada), choices(lists=[news, events], phone_ok=True))

    response = client.post(page_of(ada), {"action": "unsubscribe_all"})

    assert response.status_code == 303
    assert set(Subscription.objects.values_list("status", flat=True)) == {"unsubscribed"}
    state = current_state(ada)
    assert not state.list_granted(news.pk) and not state.list_granted(events.pk)
    assert not state.channel_granted("phone")
    assert not state.standing("marketing", "email").granted
    assert Suppression.objects.get(email_hmac=email_hmac(ada.email)).reason == "unsubscribed"
    page = client.get(response["Location"]).content.decode()
    assert "You are unsubscribed from everything" in page


def test_leaving_everything_takes_back_what_waited_for_the_confirmation_email(client, ada, news):
    client.post(page_of(ada), choices(name="Ada King", lists=[news], phone_ok=True))
    older_email = link_in(mails_to("ada@example.com")[-1], "/c/")
    client.post(page_of(ada), {"action": "unsubscribe_all"})

    client.post(older_email)

    ada.refresh_from_db()
    assert not current_state(ada).channel_granted("phone")
    assert ada.name == "Ada Lovelace"
    assert "Waiting for your confirmation" not in client.get(page_of(ada)).content.decode()


def test_joining_a_list_again_after_leaving_everything_lifts_the_suppression_once_confirmed(
    client, ada, news
):
    do_unsubscribe_all(ada, source="unsubscribe")

    client.post(page_of(ada), choices(lists=[news]))
    assert Suppression.objects.exists()  # not from the page alone: its link may be forwarded
    client.post(link_in(mails_to("ada@example.com")[-1], "/c/"))

    assert not Suppression.objects.exists()
    removed = AuditEntry.objects.get(action="suppression.removed")
    assert removed.details["reason"] == "unsubscribed"
    assert removed.details["cause"] == "re-subscribed"
    assert current_state(ada).list_granted(news.pk)
    assert current_state(ada).standing("marketing", "email").granted


@pytest.mark.parametrize("reason", ["hard_bounce", "complaint", "manual"])
def test_an_address_stopped_for_a_reason_the_person_cannot_lift_joins_no_list_and_is_told(
    client, ada, news, events, reason
):
    Suppression.objects.create(email_hmac=email_hmac(ada.email), reason=reason)
    page = client.get(page_of(ada)).content.decode()
    assert "Mail to this address has been stopped" in page
    before = last_event_id()

    response = client.post(
        page_of(ada), choices(lists=[news, events], phone_ok=True, tracking=False)
    )

    assert response["Location"].endswith("?done=refused")
    assert not ada.subscriptions.filter(mailing_list=events).exists()
    assert not current_state(ada).list_granted(events.pk)
    assert Suppression.objects.get().reason == reason
    # No confirmation can reach the address, so nothing that needs one happens; a refusal
    # needs none.
    assert [(e.purpose, e.channel, e.action) for e in new_events(before)] == [
        ("newsletter.tracking", "email", "withdrawn")
    ]
    assert mails_to("ada@example.com") == []
    page = client.get(response["Location"]).content.decode()
    assert "we could not make the changes that need your confirmation" in page
    assert "Your preferences are saved" not in page


def test_a_suppressed_domain_also_stops_joining_lists_from_the_page(client, ada, events):
    do_add_suppressions(["@example.com"], actor=None)

    response = client.post(page_of(ada), choices(lists=[events]))

    assert response["Location"].endswith("?done=refused")
    assert not ada.subscriptions.filter(mailing_list=events).exists()


def test_the_page_is_a_normal_form_protected_against_cross_site_posts(ada, news):
    browser = Client(enforce_csrf_checks=True)

    forged = browser.post(page_of(ada), {"action": "unsubscribe_all"})
    assert forged.status_code == 403
    assert Subscription.objects.get().status == "confirmed"

    browser.get(page_of(ada))
    token = browser.cookies["csrftoken"].value
    saved = browser.post(page_of(ada), {**choices(lists=[]), "csrfmiddlewaretoken": token})
    assert saved.status_code == 303


# --- expired links ----------------------------------------------------------------------------
def test_an_expired_link_offers_to_email_a_fresh_one(client, ada, news):
    link = page_of(ada)

    with time_machine.travel(timezone.now() + timedelta(days=366)):
        expired = client.get(link)
        refused = client.post(link, choices(lists=[]))
        sent = client.post("/p/", {"email": "ADA@example.com"}, REMOTE_ADDR=next_ip())
        (message,) = mails_to("ada@example.com")
        fresh = client.get(link_in(message, "/p/"))

    assert expired.status_code == refused.status_code == 410
    assert "This link has expired" in expired.content.decode()
    assert 'action="/p/"' in expired.content.decode()
    assert Subscription.objects.get().status == "confirmed"
    assert sent.status_code == 303
    assert "Check your inbox" in client.get(sent["Location"]).content.decode()
    assert message.subject == "Your link to manage your emails from Example Software Ltd"
    assert fresh.status_code == 200


def test_asking_for_a_link_answers_the_same_for_unknown_and_suppressed_addresses(client, ada):
    Contact.objects.create(email="bounced@example.com", name="B")
    Suppression.objects.create(email_hmac=email_hmac("bounced@example.com"), reason="complaint")

    answers = [
        client.post("/p/", {"email": email}, REMOTE_ADDR=next_ip())["Location"]
        for email in ["ada@example.com", "nobody@example.com", "bounced@example.com"]
    ]

    assert len(set(answers)) == 1
    assert len(mails_to("ada@example.com")) == 1
    assert not mails_to("nobody@example.com") and not mails_to("bounced@example.com")


def test_asking_for_a_link_redirects_so_a_refresh_sends_no_second_email(client, ada):
    response = client.post("/p/", {"email": "ada@example.com"}, REMOTE_ADDR=next_ip())

    assert response.status_code == 303
    assert response["Location"] == "/p/sent"  # the address is not in it
    pages = [client.get(response["Location"]) for _ in range(3)]
    assert {p.status_code for p in pages} == {200}
    assert "Check your inbox" in pages[-1].content.decode()
    assert len(mails_to("ada@example.com")) == 1


def test_asking_for_links_is_rate_limited(client, ada):
    answers = [
        client.post("/p/", {"email": "ada@example.com"}, REMOTE_ADDR="192.0.2.50").status_code
        for _ in range(6)
    ]

    assert answers == [303] * 5 + [429]


def test_many_visitors_cannot_flood_one_inbox_with_preference_links(client, ada):
    """The per-IP limit stops one machine; requests from many addresses (a botnet, or anyone
    who can change IP) must not turn the page into a way to fill one person's inbox — the same
    guard the sign-up form's confirmations have."""
    answers = [
        client.post("/p/", {"email": "ada@example.com"}, REMOTE_ADDR=next_ip()) for _ in range(10)
    ]

    assert {a.status_code for a in answers} == {303}
    assert len({a["Location"] for a in answers}) == 1  # nothing tells that mail was held back
    assert len(mails_to("ada@example.com")) == 3
