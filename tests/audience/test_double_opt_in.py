"""Double opt-in: a signed, expiring confirmation link; subscribed only by the click; purges."""

from datetime import timedelta
from email.utils import parseaddr
from io import StringIO

import pytest
import time_machine
from django.core import signing
from django.core.management import call_command
from django.utils import timezone

from tests.audience.public_helpers import (
    audit_page,
    link_in,
    mails_to,
    make_form,
    sign_up,
    write_policy,
)
from tidings.audience.actions import do_purge_unconfirmed, do_subscribe
from tidings.audience.consent import current_state
from tidings.audience.models import ConsentEvent, Contact, Subscription
from tidings.audience.tasks import purge_pending_signups
from tidings.audience.tokens import SALT_CONFIRM
from tidings.campaigns.mail import render_system_email, template_problems
from tidings.campaigns.models import SystemEmailTemplate
from tidings.lib.models import AuditEntry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("public_pages")]


@pytest.fixture
def form(news, events):
    return make_form([news, events], optional_fields=["company", "phone"], channels=["phone"])


def confirmation(email="ada@example.com"):
    (message,) = [m for m in mails_to(email) if "confirm" in m.subject.lower()]
    return message


def no_double_opt_in(tmp_path, settings):
    write_policy(tmp_path, settings, ("double_opt_in = true", "double_opt_in = false"))


# --- the confirmation email -------------------------------------------------------------------
def test_the_confirmation_email_says_why_it_came_and_that_ignoring_it_means_no_subscription(
    client, form, news
):
    sign_up(client, form, lists=[news])

    message = confirmation()
    text = message.body("plain")
    assert message.subject == "Please confirm: Product news from Example Software Ltd"
    assert "Hello Ada," in text
    assert "asked Example Software Ltd to email this address" in text
    assert "  - Product news" in text
    assert "ignore this email: you will not be subscribed" in text
    assert "Example House, Business Park" in text
    assert 'href="http://127.0.0.1:8000/c/' in message.body("html")
    assert parseaddr(message.parsed()["From"]) == ("Example Software Ltd", "newsletter@localhost")
    assert message.parsed()["List-Unsubscribe"] is None  # not a list message


def test_the_confirmation_link_holds_internal_ids_and_never_the_address(client, form, news):
    sign_up(client, form, lists=[news])

    token = link_in(confirmation(), "/c/").rsplit("/", 1)[1]

    payload = signing.loads(token, salt=SALT_CONFIRM)
    assert payload == {
        "c": Contact.objects.get().pk,
        "l": [news.pk],
        "f": form.pk,
        "w": ConsentEvent.objects.get().wording_id,
        "ch": [],
    }


def test_opening_the_link_does_not_confirm_because_link_scanners_open_every_link(
    client, form, news
):
    sign_up(client, form, lists=[news])
    link = link_in(confirmation(), "/c/")

    page = client.get(link)
    client.head(link)

    assert page.status_code == 200
    assert "Yes, subscribe me" in page.content.decode()
    assert Subscription.objects.get().status == Subscription.Status.PENDING
    assert len(mails_to("ada@example.com")) == 1


def test_pressing_the_button_confirms_records_the_consent_and_sends_a_welcome(client, form, news):
    sign_up(client, form, lists=[news])
    link = link_in(confirmation(), "/c/")

    response = client.post(link)

    # Post/Redirect/Get: a refresh of the answer posts nothing again.
    assert response.status_code == 303
    assert response["Location"] == f"{link}?done=subscribed"
    answer = client.get(response["Location"])
    assert "You are subscribed" in answer.content.decode()
    assert "welcome email" in answer.content.decode()
    assert "<li>Product news</li>" in answer.content.decode()
    sub = Subscription.objects.get()
    assert sub.status == Subscription.Status.CONFIRMED and sub.confirmed_at is not None
    signed, confirmed = ConsentEvent.objects.order_by("pk")
    assert (signed.source, confirmed.source) == ("form", "confirmation")
    assert confirmed.wording == signed.wording  # the words of the sign-up, kept as proof
    assert confirmed.source_ref == f"form:{form.pk}"
    assert AuditEntry.objects.filter(action="signup.confirmed", object_id=str(sub.contact_id))
    welcome = mails_to("ada@example.com")[-1]
    assert welcome.subject == "Welcome to Product news"
    assert "/p/" in welcome.body("plain") and "/u/" in welcome.body("plain")
    assert welcome.parsed()["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_confirming_twice_changes_nothing_more(client, form, news):
    sign_up(client, form, lists=[news])
    link = link_in(confirmation(), "/c/")
    client.post(link)

    again = client.post(link, follow=True)

    assert again.status_code == 200
    assert "You are subscribed" in again.content.decode()
    assert "welcome email" not in again.content.decode()  # none went this time
    assert ConsentEvent.objects.count() == 2
    assert len(mails_to("ada@example.com")) == 2  # the confirmation and one welcome


def test_phone_consent_ticked_on_the_form_is_recorded_when_the_sign_up_is_confirmed(
    client, form, news
):
    sign_up(client, form, lists=[news], phone="01244 000 001", channel_phone="on")
    assert not ConsentEvent.objects.filter(purpose="marketing").exists()

    client.post(link_in(confirmation(), "/c/"))

    phone = ConsentEvent.objects.get(purpose="marketing")
    assert (phone.channel, phone.action, phone.source) == ("phone", "granted", "confirmation")
    assert phone.wording is not None


def test_the_email_the_button_page_and_the_answer_name_the_channel_the_form_asked_for(
    client, form, news
):
    sign_up(client, form, lists=[news], phone="01244 000 001", channel_phone="on")
    mail = confirmation()
    assert "You may telephone me about these topics" in mail.body("plain")
    assert "<li>You may telephone me about these topics</li>" in mail.body("html")
    link = link_in(mail, "/c/")
    button = client.get(link).content.decode()
    assert "<li>You may telephone me about these topics</li>" in button

    answer = client.post(link, follow=True).content.decode()

    assert "You are subscribed" in answer and "<li>Product news</li>" in answer
    assert "You agreed that:" in answer
    assert "<li>You may telephone me about these topics</li>" in answer


def test_ticking_the_telephone_box_without_a_number_asks_for_the_number(client, form, news):
    response = sign_up(client, form, lists=[news], channel_phone="on")

    assert response.status_code == 200
    assert (
        "Give your phone number, or untick “You may also telephone me about these topics”."
        in response.content.decode()
    )
    assert not Contact.objects.exists() and not mails_to("ada@example.com")


def test_a_subscriber_agreeing_only_to_a_channel_on_a_form_is_told_that_not_subscribed(
    client, form, news
):
    sign_up(client, form, lists=[news])
    client.post(link_in(confirmation(), "/c/"))
    # Already on the list, she signs up again, this time also to be telephoned.
    sign_up(client, form, lists=[news], phone="01244 000 001", channel_phone="on")
    link = link_in(mails_to("ada@example.com")[-1], "/c/")

    response = client.post(link)

    assert current_state(Contact.objects.get()).channel_granted("phone")
    assert response["Location"] == f"{link}?done=changed"
    answer = client.get(response["Location"]).content.decode()
    assert "You are subscribed" not in answer
    assert "<h1>Your changes are made</h1>" in answer
    assert "<li>You may telephone me about these topics</li>" in answer
    assert "You were already subscribed to:" in answer and "<li>Product news</li>" in answer


def test_a_form_link_whose_list_closed_and_grants_only_a_channel_says_what_it_did(
    client, form, news
):
    sign_up(client, form, lists=[news], phone="01244 000 001", channel_phone="on")
    link = link_in(confirmation(), "/c/")
    news.closed_at = timezone.now()
    news.save(update_fields=["closed_at"])
    assert "<button" in client.get(f"{link}?done=changed").content.decode()  # not pressed yet

    answer = client.post(link, follow=True).content.decode()

    assert current_state(Contact.objects.get()).channel_granted("phone")
    assert "You are subscribed" not in answer
    assert "<h1>Your changes are made</h1>" in answer
    assert "<li>You may telephone me about these topics</li>" in answer
    assert "<button" not in answer


def test_an_expired_confirmation_link_says_so_and_offers_to_sign_up_again(client, form, news):
    sign_up(client, form, lists=[news])
    link = link_in(confirmation(), "/c/")

    with time_machine.travel(timezone.now() + timedelta(days=8)):
        page = client.get(link)
        pressed = client.post(link)

    assert page.status_code == pressed.status_code == 410
    html = page.content.decode()
    assert "This link has expired" in html
    assert "Confirmation links work for 7 days" in html
    assert 'href="/f/news"' in html
    assert Subscription.objects.get().status == Subscription.Status.PENDING


def test_the_confirmation_period_is_a_setting(client, form, news, settings):
    settings.TIDINGS_CONFIRM_DAYS = 30
    sign_up(client, form, lists=[news])

    with time_machine.travel(timezone.now() + timedelta(days=8)):
        response = client.post(link_in(confirmation(), "/c/"))

    assert response.status_code == 303
    assert Subscription.objects.get().status == Subscription.Status.CONFIRMED


def test_a_tampered_link_is_refused_with_a_plain_explanation(client, form, news):
    sign_up(client, form, lists=[news])
    link = link_in(confirmation(), "/c/")

    response = client.post(link[:-2] + ("xy" if not link.endswith("xy") else "zz"))

    assert response.status_code == 404
    assert "This link does not work" in response.content.decode()
    assert Subscription.objects.get().status == Subscription.Status.PENDING


# --- signing up again -------------------------------------------------------------------------
def test_signing_up_again_as_an_existing_contact_only_resends_the_confirmation(
    client, form, news, events
):
    ada = Contact.objects.create(email="ada@example.com", name="Ada L.")
    do_subscribe(ada, news, source="import", wording_text="imported", confirmed=True)
    before = list(ConsentEvent.objects.values_list("pk", flat=True))

    response = sign_up(client, form, name="Someone Else", company="Evil Corp", lists=[events])

    assert response.status_code == 303
    ada.refresh_from_db()
    assert (ada.name, ada.company) == ("Ada L.", "")
    assert list(ConsentEvent.objects.values_list("pk", flat=True)) == before
    assert not Subscription.objects.filter(mailing_list=events).exists()
    message = confirmation()
    assert "Hello Ada," in message.body("plain")

    client.post(link_in(message, "/c/"))

    assert Subscription.objects.get(mailing_list=events).status == Subscription.Status.CONFIRMED


def test_signing_up_again_while_pending_sends_a_fresh_confirmation_and_stores_nothing(
    client, form, news
):
    sign_up(client, form, lists=[news])
    counts = (Contact.objects.count(), Subscription.objects.count(), ConsentEvent.objects.count())

    sign_up(client, form, lists=[news], name="Changed Name")

    assert (
        Contact.objects.count(),
        Subscription.objects.count(),
        ConsentEvent.objects.count(),
    ) == counts
    assert Contact.objects.get().name == "Ada Lovelace"
    assert len(mails_to("ada@example.com")) == 2


# --- without double opt-in --------------------------------------------------------------------
def test_without_double_opt_in_a_new_sign_up_is_confirmed_at_once_with_a_welcome(
    client, news, tmp_path, settings
):
    no_double_opt_in(tmp_path, settings)
    form = make_form([news])

    sign_up(client, form, lists=[news])

    assert Subscription.objects.get().status == Subscription.Status.CONFIRMED
    (message,) = mails_to("ada@example.com")
    assert message.subject == "Welcome to Product news"


def test_without_double_opt_in_an_existing_contact_still_confirms_by_email(
    client, news, tmp_path, settings
):
    no_double_opt_in(tmp_path, settings)
    form = make_form([news])
    Contact.objects.create(email="ada@example.com", name="Ada")

    sign_up(client, form, lists=[news])

    assert not Subscription.objects.exists()
    assert confirmation()


# --- purging sign-ups nobody confirmed --------------------------------------------------------
def test_sign_ups_never_confirmed_are_purged_with_their_contact_and_ledger(client, form, news):
    sign_up(client, form, lists=[news])
    sign_up(client, form, email="grace@example.com", name="Grace", lists=[news])
    client.post(link_in(confirmation("grace@example.com"), "/c/"))

    with time_machine.travel(timezone.now() + timedelta(days=8)):
        result = do_purge_unconfirmed()

    assert (result.subscriptions, result.contacts, result.events) == (1, 1, 1)
    assert list(Contact.objects.values_list("email", flat=True)) == ["grace@example.com"]
    assert not ConsentEvent.objects.exclude(contact__email="grace@example.com").exists()
    entry = AuditEntry.objects.get(action="signup.purged")
    assert entry.details == {"subscriptions": 1, "contacts": 1, "events": 1, "older_than_days": 7}


def test_recent_pending_sign_ups_are_kept(client, form, news):
    sign_up(client, form, lists=[news])

    with time_machine.travel(timezone.now() + timedelta(days=6)):
        result = do_purge_unconfirmed()

    assert result.subscriptions == 0
    assert Subscription.objects.get().status == Subscription.Status.PENDING


def test_the_pending_period_is_a_setting(client, form, news, settings):
    settings.TIDINGS_PENDING_DAYS = 2
    sign_up(client, form, lists=[news])

    with time_machine.travel(timezone.now() + timedelta(days=3)):
        assert do_purge_unconfirmed().contacts == 1


def test_a_contact_with_anything_else_is_kept_and_its_lapsed_sign_up_marked_withdrawn(
    client, form, news, events
):
    sign_up(client, form, lists=[news])
    ada = Contact.objects.get()
    do_subscribe(ada, events, source="operator", wording_text="told us by phone", confirmed=True)

    with time_machine.travel(timezone.now() + timedelta(days=8)):
        result = do_purge_unconfirmed()

    assert (result.subscriptions, result.contacts, result.events) == (1, 0, 0)
    assert Contact.objects.get() == ada
    assert list(Subscription.objects.values_list("mailing_list", flat=True)) == [events.pk]
    lapsed = ConsentEvent.objects.filter(mailing_list=news).order_by("pk").last()
    assert (lapsed.action, lapsed.source) == ("withdrawn", "system")


def test_the_purge_runs_from_the_command_line_and_as_a_background_task(client, form, news):
    sign_up(client, form, lists=[news])
    sign_up(client, form, email="grace@example.com", lists=[news])

    with time_machine.travel(timezone.now() + timedelta(days=8)):
        out = StringIO()
        call_command("audience", "purge-pending", "--days", "7", stdout=out)
        assert "Purged 2 unconfirmed sign-up(s) older than 7 day(s)" in out.getvalue()
        assert purge_pending_signups.call() == {"subscriptions": 0, "contacts": 0, "events": 0}

    assert not Contact.objects.exists()


# --- templates the operator can edit ----------------------------------------------------------
def test_an_operators_edited_confirmation_email_is_used_and_unknown_names_render_empty(
    client, form, news
):
    SystemEmailTemplate.objects.create(
        key="confirmation",
        subject="{{ first_name }}, one click{{ missing }} left",
        text_body="Confirm here: {{ confirm_url }}\n{{ no.such.thing }}{{ settings.SECRET_KEY }}",
    )

    sign_up(client, form, lists=[news])

    (message,) = mails_to("ada@example.com")
    assert message.subject == "Ada, one click left"
    assert message.body("plain").startswith("Confirm here: http://127.0.0.1:8000/c/")
    assert message.body("html") == ""  # the operator wrote no HTML part
    assert client.post(link_in(message, "/c/")).status_code == 303


def test_a_broken_operator_template_falls_back_to_the_shipped_one(client, form, news):
    SystemEmailTemplate.objects.create(
        key="confirmation", subject="{% if %}", text_body="{{ name() }}"
    )

    sign_up(client, form, lists=[news])

    assert confirmation().subject == "Please confirm: Product news from Example Software Ltd"
    assert template_problems("{% if %}", "ok")
    assert template_problems("Hi {{ first_name }}", "Link: {{ confirm_url }}") == []


def test_html_emails_escape_what_people_typed_and_templates_reach_nothing_else():
    SystemEmailTemplate.objects.create(
        key="welcome",
        subject="Hi",
        text_body="{{ name }}{{ secret }}",
        html_body="<p>{{ name }}</p>",
    )

    _subject, text, html = render_system_email(
        "welcome", {"name": "<script>alert(1)</script>", "lists": ["News"], "secret": "x"}
    )

    assert text == "<script>alert(1)</script>"
    assert html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"


def test_a_system_template_reaching_for_python_internals_is_refused_and_the_default_goes_out():
    reaching = "<p>{{ name }}</p>{{ ''.__class__.__mro__ }}{{ lists.__class__ }}"
    problems = template_problems("Hi", "{{ name }}", reaching)
    assert problems and all(p.startswith("HTML: ") for p in problems)
    assert any("'__class__'" in p for p in problems)
    SystemEmailTemplate.objects.create(
        key="welcome", subject="Hi", text_body="{{ name }}", html_body=reaching
    )

    subject, text, html = render_system_email("welcome", {"name": "Ada", "lists": ["News"]})

    assert subject == "Welcome to News"  # the shipped default, whole
    assert "class" not in html and "mro" not in html
    assert "Thank you for confirming" in text


def test_system_templates_run_within_the_campaigns_render_limits():
    # A loop of a billion iterations would hang a plain sandbox; this one stops it at its limit.
    endless = "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}"
    SystemEmailTemplate.objects.create(key="welcome", subject="Hi", text_body=endless)

    subject, text, _html = render_system_email("welcome", {"name": "Ada", "lists": ["News"]})

    # The default went out instead: the loop was stopped, not run to its hundred million x's.
    assert subject == "Welcome to News" and "x" * 100 not in text


def test_the_pages_of_the_confirmation_flow_have_one_heading_and_no_script(client, form, news):
    sign_up(client, form, lists=[news])
    link = link_in(confirmation(), "/c/")

    for response in (client.get(link), client.post(link, follow=True)):
        page = audit_page(response.content.decode())
        assert page.h1 == 1 and page.scripts == 0


def test_the_purge_locks_the_people_before_their_sign_ups(client, form, news):
    """Every consent change locks the person, then their subscriptions (a confirmation click
    does); the purge locked sign-ups first (with their contacts), so a confirmation clicked while
    it ran could deadlock with it on PostgreSQL.  The lock statements, in order."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite locks the whole database)")
    sign_up(client, form, lists=[news])
    sign_up(client, form, email="grace@example.com", name="Grace", lists=[news])

    later = timezone.now() + timedelta(days=8)
    with time_machine.travel(later), CaptureQueriesContext(connection) as queries:
        assert do_purge_unconfirmed().contacts == 2

    locks = [q["sql"] for q in queries.captured_queries if " FOR " in q["sql"]]
    assert locks, "the purge takes row locks"
    assert locks[0].split(" FROM ")[1].startswith('"audience_contact"'), locks[0]
    assert all('"audience_contact"' not in lock.split(" FOR ")[1] for lock in locks[1:])
    assert "ORDER BY" in locks[0]


def test_refreshing_the_answer_page_confirms_nothing_again_and_its_address_names_no_one(
    client, form, news
):
    """The button's POST answers with a redirect (303) to a GET of the same link, whose
    address adds only a word: no address, no name; refreshing it posts nothing, and a scanner
    opening it confirms nothing either."""
    sign_up(client, form, lists=[news])
    link = link_in(confirmation(), "/c/")

    response = client.post(link)
    answer = response["Location"]
    assert response.status_code == 303 and response.cookies == {}
    assert answer.endswith("?done=subscribed") and "ada" not in answer.lower()
    for _ in range(2):  # the page, then a refresh of it
        page = client.get(answer)
        assert page.status_code == 200 and "You are subscribed" in page.content.decode()
    assert ConsentEvent.objects.count() == 2
    assert len(mails_to("ada@example.com")) == 2  # the confirmation and one welcome


def test_the_answer_page_opened_before_the_button_was_pressed_confirms_nothing(client, form, news):
    sign_up(client, form, lists=[news])
    link = link_in(confirmation(), "/c/")

    page = client.get(f"{link}?done=subscribed")

    assert page.status_code == 200
    # Not "You are subscribed" over an empty list: the page with the button, which is the truth.
    assert "You are subscribed" not in page.content.decode()
    assert "Yes, subscribe me" in page.content.decode()
    assert Subscription.objects.get().status == Subscription.Status.PENDING
