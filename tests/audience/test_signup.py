"""Sign-up forms: fields from the policy, unticked consent, spam defences, one answer for all."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from tests.audience.public_helpers import (
    NEWSLETTER_COLLECTS,
    audit_page,
    link_in,
    mails_to,
    make_form,
    make_list,
    next_ip,
    sent_mail,
    sign_up,
    write_policy,
)
from tidings.audience.actions import (
    SignupFormInvalid,
    _confirmation_allowed,
    do_subscribe,
    do_update_signup_form,
)
from tidings.audience.emails import email_hmac
from tidings.audience.forms import build_signup_form_class, render_embed_snippet
from tidings.audience.models import (
    ConsentEvent,
    Contact,
    SignupForm,
    Subscription,
    Suppression,
)
from tidings.lib.models import AuditEntry
from tidings.policy import get_policy

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("public_pages")]


@pytest.fixture
def news():
    return make_list("Product news", "product news", description="What is new, monthly.")


@pytest.fixture
def form(news, events):
    return make_form([news, events], optional_fields=["company"])


def body_text(response) -> str:
    """The page's words, without markup or whitespace differences."""
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


# --- what the form offers ---------------------------------------------------------------------
def test_the_hosted_form_offers_exactly_the_fields_the_newsletter_purpose_allows(client, form):
    page = audit_page(client.get("/f/news").content.decode())

    names = {i["name"] for i in page.inputs if i.get("type") != "checkbox"}
    assert names == {"email", "name", "company", "homepage"}
    by_name = {i["name"]: i for i in page.inputs}
    assert "required" in by_name["email"] and "required" in by_name["name"]
    assert "required" not in by_name["company"]


def test_required_fields_are_asked_even_when_the_operator_offers_no_optional_ones(news):
    form = make_form([news], slug="bare", optional_fields=[])
    form_class = build_signup_form_class(get_policy(), form, [news])

    assert form_class.contact_field_names == ("name", "email")


def test_consent_boxes_start_unticked_with_the_policy_wording_and_a_privacy_link(client, form):
    response = client.get("/f/news")
    page = audit_page(response.content.decode())

    boxes = [i for i in page.inputs if i.get("type") == "checkbox"]
    assert len(boxes) == 2
    assert not any("checked" in box for box in boxes)
    text = body_text(response)
    assert "Example Software Ltd will email you about events and webinars and product news" in text
    assert "unsubscribe at any time" in text
    assert 'href="http://127.0.0.1:8000/privacy"' in response.content.decode()


def test_an_operator_cannot_offer_a_field_the_policy_does_not_allow(news):
    with pytest.raises(SignupFormInvalid) as exc:
        make_form([news], optional_fields=["work_address", "date_of_birth"])

    assert any("work_address" in p for p in exc.value.problems)
    assert any("date_of_birth" in p for p in exc.value.problems)
    assert not SignupForm.objects.exists()


def test_an_operator_cannot_ask_for_phone_consent_on_a_form_without_a_phone_field(news):
    with pytest.raises(SignupFormInvalid):
        make_form([news], channels=["phone"])

    form = make_form([news], optional_fields=["phone"], channels=["phone"])
    assert form.channels == ["phone"]


def test_operators_change_forms_through_the_action_and_each_change_is_audited(form, news, owner):
    do_update_signup_form(form, actor=owner, intro="Hello", lists=[news])

    form.refresh_from_db()
    assert form.intro == "Hello"
    assert list(form.lists.all()) == [news]
    entry = AuditEntry.objects.filter(action="signup_form.updated").get()
    assert entry.details == {"fields": ["intro", "lists"]}
    assert entry.actor == owner
    with pytest.raises(SignupFormInvalid):
        do_update_signup_form(form, lists=[])


def test_a_policy_that_stops_allowing_a_field_removes_it_from_existing_forms(
    client, form, tmp_path, settings
):
    write_policy(
        tmp_path,
        settings,
        (NEWSLETTER_COLLECTS, NEWSLETTER_COLLECTS.replace('"phone", "company", ', "")),
    )

    page = audit_page(client.get("/f/news").content.decode())

    assert "company" not in {i["name"] for i in page.inputs}


def test_a_topic_taken_out_of_the_policy_is_no_longer_offered_or_subscribed(
    client, form, news, events, tmp_path, settings
):
    # The company drops "events and webinars" from its policy's marketing topics (and so from
    # its privacy notice): the existing form went on offering the Events list, and a hand-made
    # POST ticking it subscribed people to a topic the notice no longer names.
    sign_up(client, form, email="before@example.com", lists=[events])
    write_policy(
        tmp_path,
        settings,
        (
            'topics = ["product news", "events and webinars", "training"]',
            'topics = ["product news", "training"]',
        ),
    )

    page = client.get("/f/news").content.decode()
    assert f'name="list_{events.pk}"' not in page
    assert f'name="list_{news.pk}"' in page
    sign_up(client, form, email="grace@example.com", lists=[news, events])
    assert set(
        Subscription.objects.filter(contact__email="grace@example.com").values_list(
            "mailing_list__topic", flat=True
        )
    ) == {"product news"}
    # A confirmation link mailed before the change confirms nothing of the dropped topic.
    link = link_in(mails_to("before@example.com")[-1], "/c/")
    client.post(link)
    assert not Subscription.objects.filter(
        contact__email="before@example.com", status=Subscription.Status.CONFIRMED
    ).exists()


# --- submitting -------------------------------------------------------------------------------
def test_a_sign_up_stores_a_pending_subscription_and_the_words_the_person_saw(client, form, news):
    response = sign_up(client, form, lists=[news], company="Analytical Engines")

    assert response.status_code == 303
    contact = Contact.objects.get()
    assert (contact.email, contact.name, contact.company) == (
        "ada@example.com",
        "Ada Lovelace",
        "Analytical Engines",
    )
    sub = Subscription.objects.get()
    assert (sub.mailing_list, sub.status) == (news, Subscription.Status.PENDING)
    event = ConsentEvent.objects.get()
    assert (event.action, event.source, event.source_ref) == ("granted", "form", f"form:{form.pk}")
    assert event.mailing_list == news and event.topic == "product news"
    assert event.wording.text.startswith("Example Software Ltd will email you")
    assert "/privacy" in event.wording.text


def test_no_ip_address_is_kept_when_the_policy_does_not_allow_it(client, form):
    sign_up(client, form, ip="192.0.2.7")

    assert set(ConsentEvent.objects.values_list("ip_address", flat=True)) == {None}


def test_the_ip_address_is_kept_with_the_consent_when_the_policy_allows_it(
    client, news, tmp_path, settings
):
    write_policy(
        tmp_path,
        settings,
        (
            NEWSLETTER_COLLECTS,
            NEWSLETTER_COLLECTS.replace('"job_title"]', '"job_title", "ip_address"]'),
        ),
    )
    form = make_form([news], optional_fields=["company"])

    sign_up(client, form, ip="192.0.2.7")

    assert ConsentEvent.objects.get().ip_address == "192.0.2.7"
    page = audit_page(client.get("/f/news").content.decode())
    assert "ip_address" not in {i["name"] for i in page.inputs}  # captured, never typed


def test_fields_the_form_does_not_offer_are_ignored_and_never_stored(client, form):
    sign_up(
        client,
        form,
        job_title="Countess",  # allowed by the policy, but not offered by this form
        phone="01244 000 001",
        date_of_birth="1815-12-10",  # allowed by nothing
        attributes='{"religion": "none"}',
        email_hmac="x",
    )

    contact = Contact.objects.get()
    assert (contact.job_title, contact.phone, contact.attributes) == ("", "", {})


def test_a_syntactically_invalid_address_gets_a_form_error(client, form):
    response = sign_up(client, form, email="ada@@example")

    assert "Enter a valid email address" in response.content.decode()
    assert not Contact.objects.exists()


def test_ticking_no_box_is_an_error_that_says_what_to_do(client, form):
    response = sign_up(client, form, lists=[])

    assert response.status_code == 200
    assert "Tick at least one newsletter" in response.content.decode()
    assert 'role="alert"' in response.content.decode()
    assert not Contact.objects.exists()


def test_the_no_box_message_describes_the_boxes_and_their_fieldset(client, news):
    """ "Tick the box to say you want this newsletter." stood only at the top of the form: the
    box itself was neither marked invalid nor described by it, so a screen reader on the box
    (or anyone looking at it) learnt nothing of why the form came back."""
    make_form([news])
    html = sign_up(client, SignupForm.objects.get(), lists=[]).content.decode()

    box = re.search(r'<input type="checkbox" name="list_\d+"[^>]*>', html)
    assert box, html
    assert 'aria-invalid="true"' in box.group()
    described = re.search(r'aria-describedby="([^"]+)"', box.group())
    assert described
    ids = described.group(1).split()
    texts = [
        re.sub(r"<[^>]+>", "", m.group(1)).strip()
        for i in ids
        if (m := re.search(rf'id="{re.escape(i)}"[^>]*>(.*?)</(?:ul|div|p)>', html, re.S))
    ]
    assert len(texts) == len(ids), ids  # every id it names is on the page
    assert "What is new, monthly." in texts  # its own help, as before
    assert "Tick the box to say you want this newsletter." in texts
    # The group says it too, and the message is inside it, by the boxes.
    fieldset = re.search(r"<fieldset([^>]*)>(.*?)</fieldset>", html, re.S)
    assert fieldset and f'aria-describedby="{ids[-1]}"' in fieldset.group(1)
    assert "Tick the box to say you want this newsletter." in fieldset.group(2)


def test_the_answer_is_the_same_for_new_pending_confirmed_and_suppressed_addresses(
    client, form, news
):
    confirmed = Contact.objects.create(email="grace@example.com", name="Grace")
    do_subscribe(confirmed, news, source="import", wording_text="x", confirmed=True)
    Contact.objects.create(email="barbara@example.com", name="Barbara")
    sign_up(client, form, email="pending@example.com")
    Suppression.objects.create(email_hmac=email_hmac("bounced@example.com"), reason="hard_bounce")
    Suppression.objects.create(email_hmac=email_hmac("left@example.com"), reason="unsubscribed")

    answers = {
        email: sign_up(client, form, email=email)
        for email in [
            "new@example.com",
            "pending@example.com",
            "grace@example.com",
            "barbara@example.com",
            "bounced@example.com",
            "left@example.com",
        ]
    }

    assert {r.status_code for r in answers.values()} == {303}
    assert {r["Location"] for r in answers.values()} == {"/f/news/thanks"}
    assert len({body_text(r) for r in answers.values()}) == 1
    assert "Check your inbox to confirm" in body_text(client.get("/f/news/thanks"))
    assert not any(r.cookies for r in answers.values())


def test_a_filled_honeypot_gets_the_same_answer_and_nothing_is_stored(client, form):
    human = sign_up(client, form, email="human@example.com")

    bot = sign_up(client, form, email="bot@example.com", homepage="https://spam.example")

    assert bot.status_code == human.status_code == 303
    assert bot["Location"] == human["Location"]
    assert list(Contact.objects.values_list("email", flat=True)) == ["human@example.com"]
    assert not mails_to("bot@example.com")


def test_too_many_sign_ups_from_one_address_get_a_429_page_that_says_why(client, form):
    answers = [sign_up(client, form, email=f"p{i}@example.com", ip="192.0.2.9") for i in range(6)]

    assert [r.status_code for r in answers] == [303] * 5 + [429]
    assert "Too many attempts" in answers[-1].content.decode()
    assert "wait 10 minutes" in answers[-1].content.decode()
    assert answers[-1]["Retry-After"] == "600"
    assert Contact.objects.count() == 5
    assert sign_up(client, form, email="other@example.com", ip="192.0.2.10").status_code == 303


def test_sign_ups_from_one_ipv6_network_count_together_whichever_address_they_use(client, form):
    # One IPv6 customer holds a whole /64: a fresh address for every attempt is one visitor.
    answers = [
        sign_up(client, form, email=f"p{i}@example.com", ip=f"2001:db8:1:2::{i + 1:x}")
        for i in range(6)
    ]

    assert [r.status_code for r in answers] == [303] * 5 + [429]
    assert Contact.objects.count() == 5
    assert sign_up(client, form, email="other@example.com", ip="2001:db8:1:3::1").status_code == 303


def test_one_address_gets_at_most_three_confirmations_an_hour_whoever_asks(client, form):
    answers = [sign_up(client, form, email="victim@example.com") for _ in range(5)]

    assert {r.status_code for r in answers} == {303}
    assert [r["Location"] for r in answers] == ["/f/news/thanks"] * 3 + [
        "/f/news/thanks?answer=recently"
    ] * 2
    assert len(mails_to("victim@example.com")) == 3
    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=1)):
        sign_up(client, form, email="victim@example.com")
    assert len(mails_to("victim@example.com")) == 4


def test_a_sign_up_held_back_by_the_limit_says_an_email_went_recently_not_that_one_was_sent(
    client, form
):
    for _ in range(3):
        sign_up(client, form, email="ada@example.com")

    page = body_text(sign_up(client, form, email="ada@example.com", follow=True))

    assert len(mails_to("ada@example.com")) == 3
    assert "We have sent an email to the address you gave" not in page
    assert "we have already sent it an email, so we have not sent another one" in page
    assert "the email we sent earlier: its link works for 7 days" in page


def test_the_held_back_answer_is_the_same_for_new_known_and_suppressed_addresses(
    client, form, news
):
    confirmed = Contact.objects.create(email="grace@example.com", name="Grace")
    do_subscribe(confirmed, news, source="import", wording_text="x", confirmed=True)
    Suppression.objects.create(email_hmac=email_hmac("bounced@example.com"), reason="hard_bounce")
    addresses = ["new@example.com", "grace@example.com", "bounced@example.com"]

    answers = {
        email: [sign_up(client, form, email=email)["Location"] for _ in range(4)]
        for email in addresses
    }

    assert {tuple(a) for a in answers.values()} == {
        ("/f/news/thanks",) * 3 + ("/f/news/thanks?answer=recently",)
    }


def test_confirmations_used_up_on_the_preference_page_do_not_show_on_a_form(client, form, news):
    # Grace saved her preference page three times this hour (three confirmation emails): a
    # stranger typing her address into a form must not learn that she uses it.
    grace = Contact.objects.create(email="grace@example.com", name="Grace")
    do_subscribe(grace, news, source="import", wording_text="x", confirmed=True)
    for _ in range(3):
        assert _confirmation_allowed(grace)

    stranger = sign_up(client, form, email="grace@example.com")

    assert stranger["Location"] == "/f/news/thanks"
    assert stranger["Location"] == sign_up(client, form, email="nobody@example.com")["Location"]


def test_a_sign_up_redirects_to_a_thank_you_page_whose_refresh_sends_nothing_again(
    client, form, news
):
    """Post/Redirect/Get: the thank-you page is fetched with GET, so a browser's refresh (or its
    back and forward) fetches it again instead of posting the form a second time."""
    response = sign_up(client, form, email="ada@example.com", name="Ada Lovelace", lists=[news])

    assert response.status_code == 303
    thanks = response["Location"]
    assert thanks == "/f/news/thanks"  # no address, no name, no query string
    pages = [client.get(thanks) for _ in range(3)]  # the person refreshes twice
    assert {p.status_code for p in pages} == {200}
    assert "Check your inbox to confirm" in body_text(pages[-1])
    assert len(mails_to("ada@example.com")) == 1
    assert Contact.objects.count() == 1


def test_the_thank_you_page_of_an_inactive_or_unknown_form_is_not_found(client, form):
    do_update_signup_form(form, is_active=False)

    assert client.get("/f/news/thanks").status_code == 404
    assert client.get("/f/nothing/thanks").status_code == 404


def test_an_operators_own_thank_you_page_gets_every_submission(client, news):
    form = make_form([news], redirect_url="https://www.example.co.uk/thanks")

    good = sign_up(client, form)
    bot = sign_up(client, form, email="bot@example.com", homepage="x")

    assert good.status_code == bot.status_code == 303
    assert good["Location"] == bot["Location"] == "https://www.example.co.uk/thanks"


def test_an_inactive_form_is_not_found(client, form):
    do_update_signup_form(form, is_active=False)

    assert client.get("/f/news").status_code == 404
    assert sign_up(client, form).status_code == 404
    assert not Contact.objects.exists()


# --- the embeddable snippet -------------------------------------------------------------------
def test_the_snippet_is_a_plain_form_that_posts_to_the_absolute_address(form):
    html = render_embed_snippet(form)

    assert html.startswith('<form method="post" action="http://127.0.0.1:8000/f/news"')
    page = audit_page(html)
    assert page.scripts == 0 and not page.handlers and "<style" not in html
    assert page.unlabelled() == []
    assert all(i["id"].startswith("tidings-") for i in page.inputs)
    honeypot = next(i for i in page.inputs if i["name"] == "homepage")
    assert honeypot["tabindex"] == "-1" and honeypot["autocomplete"] == "off"
    assert re.search(r'<div hidden aria-hidden="true">\s*<label for="tidings-homepage">', html)
    assert not any("checked" in i for i in page.inputs)
    assert "csrfmiddlewaretoken" not in html
    assert 'href="http://127.0.0.1:8000/privacy"' in html


def test_the_snippet_posts_from_another_site_without_a_csrf_token(form, news):
    browser = Client(enforce_csrf_checks=True)

    response = browser.post(
        "/f/news",
        {"email": "ada@example.com", "name": "Ada", f"list_{news.pk}": "on"},
        HTTP_ORIGIN="https://www.example.co.uk",
        HTTP_REFERER="https://www.example.co.uk/newsletter",
        REMOTE_ADDR=next_ip(),
    )

    assert response.status_code == 303
    assert response["Location"] == "/f/news/thanks"
    assert Subscription.objects.get().status == "pending"
    assert len(sent_mail()) == 1


def test_the_snippets_fields_match_the_hosted_form(client, form):
    snippet = {i["name"] for i in audit_page(render_embed_snippet(form)).inputs}
    hosted = {i["name"] for i in audit_page(client.get("/f/news").content.decode()).inputs}

    assert snippet == hosted


# --- public pages, as people use them ---------------------------------------------------------
def test_every_public_page_works_without_javascript_with_one_heading_and_labelled_inputs(
    client, form, news
):
    pages = {
        "form": client.get("/f/news"),
        "done": sign_up(client, form, lists=[news], follow=True),
    }
    confirm = re.search(r"http://127\.0\.0\.1:8000(/c/\S+)", mails_to("ada@example.com")[0].body())
    pages["confirm"] = client.get(confirm.group(1))
    pages["confirmed"] = client.post(confirm.group(1), follow=True)
    welcome = mails_to("ada@example.com")[-1].body()
    preferences = re.search(r"http://127\.0\.0\.1:8000(/p/\S+)", welcome).group(1)
    unsubscribe = re.search(r"http://127\.0\.0\.1:8000(/u/\S+)", welcome).group(1)
    pages["preferences"] = client.get(preferences)
    pages["unsubscribe"] = client.get(unsubscribe)
    pages["unsubscribed"] = client.post(
        unsubscribe, {"List-Unsubscribe": "One-Click", "from": "page"}
    )
    pages["link request"] = client.get("/p/")
    pages["link sent"] = client.post(
        "/p/", {"email": "ada@example.com"}, REMOTE_ADDR=next_ip(), follow=True
    )
    pages["bad link"] = client.get("/c/nonsense")
    pages["bad preferences link"] = client.get(preferences[:-3] + "abc")
    with time_machine.travel(timezone.now() + timedelta(days=400)):
        pages["expired preferences link"] = client.get(preferences)
        pages["expired confirmation"] = client.get(confirm.group(1))
    limited = [sign_up(client, form, ip="192.0.2.99", follow=True) for _ in range(6)]
    pages["too many"] = limited[-1]

    for label, response in pages.items():
        html = response.content.decode()
        page = audit_page(html)
        expected = {"bad": 404, "expired": 410, "too": 429}.get(label.split()[0], 200)
        assert response.status_code == expected, label
        assert page.lang, label
        assert page.scripts == 0 and not page.handlers, label
        assert page.h1 == 1, label
        assert page.unlabelled() == [], label
