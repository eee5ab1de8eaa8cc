"""Suppressed addresses at sign-up: the same answer, nothing stored, nothing sent."""

import pytest

from tests.audience.public_helpers import (
    link_in,
    mails_to,
    make_form,
    sent_mail,
    sign_up,
    write_policy,
)
from tidings.audience.actions import do_create_contact, do_subscribe, do_unsubscribe_all
from tidings.audience.emails import email_hmac
from tidings.audience.models import (
    ConsentEvent,
    Contact,
    Subscription,
    SuppressedDomain,
    Suppression,
)
from tidings.lib.models import AuditEntry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("public_pages")]


@pytest.fixture
def form(news):
    return make_form([news])


def suppress(email: str, reason: str) -> Suppression:
    return Suppression.objects.create(email_hmac=email_hmac(email), reason=reason)


def nothing_stored_or_sent() -> bool:
    return not (
        Contact.objects.exists()
        or Subscription.objects.exists()
        or ConsentEvent.objects.exists()
        or bool(sent_mail())
    )


# Not "erased": like "unsubscribed", a person whose data was erased may sign up again by
# confirming by email (tests/rights/test_erasure.py).
@pytest.mark.parametrize("reason", ["hard_bounce", "complaint", "manual"])
def test_a_suppressed_address_gets_the_same_answer_but_nothing_is_stored_or_sent(
    client, form, reason
):
    suppress("ada@example.com", reason)

    response = sign_up(client, form, email="Ada@Example.COM")

    assert response.status_code == 303
    assert "Check your inbox to confirm" in client.get(response["Location"]).content.decode()
    assert nothing_stored_or_sent()


def test_an_address_at_a_suppressed_domain_gets_the_same_answer_and_nothing_happens(client, form):
    SuppressedDomain.objects.create(domain="example.net")

    response = sign_up(client, form, email="ada@example.net")

    assert "Check your inbox to confirm" in client.get(response["Location"]).content.decode()
    assert nothing_stored_or_sent()


def test_someone_who_unsubscribed_and_signs_up_again_confirms_by_email(client, form, news):
    ada, _ = do_create_contact({"name": "Ada", "email": "ada@example.com"}, purpose="newsletter")
    do_subscribe(ada, news, source="form", wording_text="Yes", confirmed=True)
    do_unsubscribe_all(ada, source="unsubscribe")
    events = ConsentEvent.objects.count()

    sign_up(client, form)

    assert Subscription.objects.get().status == "unsubscribed"  # nothing changes before the click
    assert ConsentEvent.objects.count() == events
    (message,) = mails_to("ada@example.com")
    assert "confirm" in message.subject.lower()

    client.post(link_in(message, "/c/"))

    assert Subscription.objects.get().status == "confirmed"
    assert not Suppression.objects.exists()
    removed = AuditEntry.objects.get(action="suppression.removed")
    assert (removed.details["reason"], removed.details["cause"]) == (
        "unsubscribed",
        "re-subscribed",
    )


def test_an_unsubscribed_address_with_no_contact_left_signs_up_pending_and_confirms(client, form):
    suppress("ada@example.com", "unsubscribed")

    sign_up(client, form)

    assert Subscription.objects.get().status == "pending"
    assert Suppression.objects.exists()  # until the click
    client.post(link_in(mails_to("ada@example.com")[0], "/c/"))
    assert Subscription.objects.get().status == "confirmed"
    assert not Suppression.objects.exists()


def test_without_double_opt_in_an_address_that_unsubscribed_must_still_confirm(
    client, news, tmp_path, settings
):
    write_policy(tmp_path, settings, ("double_opt_in = true", "double_opt_in = false"))
    form = make_form([news])
    suppress("ada@example.com", "unsubscribed")

    sign_up(client, form)

    assert Subscription.objects.get().status == "pending"
    assert "confirm" in mails_to("ada@example.com")[0].subject.lower()


def test_an_address_suppressed_after_signing_up_is_not_subscribed_by_the_click(client, form):
    sign_up(client, form)
    link = link_in(mails_to("ada@example.com")[0], "/c/")
    suppress("ada@example.com", "complaint")

    response = client.post(link, follow=True)

    assert "We cannot subscribe this address" in response.content.decode()
    assert Subscription.objects.get().status == "pending"
    assert Suppression.objects.get().reason == "complaint"
    assert len(mails_to("ada@example.com")) == 1  # no welcome


def test_other_suppressions_are_never_lifted_by_signing_up(client, form):
    suppress("ada@example.com", "hard_bounce")

    sign_up(client, form)

    assert Suppression.objects.get().reason == "hard_bounce"
    assert not AuditEntry.objects.filter(action="suppression.removed").exists()
