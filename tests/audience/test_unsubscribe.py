"""Unsubscribing: RFC 8058 one-click, a GET that changes nothing, effect at once, links forever."""

from datetime import timedelta
from urllib.parse import unquote

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core import signing
from django.test import Client
from django.utils import timezone

from tests.audience.public_helpers import audit_page
from tidings.audience.actions import do_create_contact, do_subscribe
from tidings.audience.consent import current_state, may_email
from tidings.audience.emails import email_hmac
from tidings.audience.models import ConsentEvent, Contact, Subscription, Suppression
from tidings.audience.tokens import (
    list_unsubscribe_headers,
    preferences_url,
    read_unsubscribe_token,
    unsubscribe_url,
)
from tidings.lib.models import AuditEntry

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("public_pages")]

ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def ada(news, events):
    contact, _ = do_create_contact(
        {"name": "Ada Lovelace", "email": "ada@example.com"}, purpose="newsletter"
    )
    for ml in (news, events):
        do_subscribe(contact, ml, source="form", wording_text="Yes please", confirmed=True)
    return contact


def path_of(url: str) -> str:
    return url.removeprefix(django_settings.TIDINGS_BASE_URL)


def mail_provider() -> Client:
    """Gmail's or Yahoo's servers: no cookies, no CSRF token, a form-encoded POST."""
    return Client(enforce_csrf_checks=True)


def one_click(url: str):
    return mail_provider().post(
        path_of(url), ONE_CLICK, content_type="application/x-www-form-urlencoded"
    )


def status_of(contact, mailing_list) -> str:
    return Subscription.objects.get(contact=contact, mailing_list=mailing_list).status


def test_opening_the_link_shows_a_button_and_unsubscribes_nobody(client, ada, news):
    response = client.get(path_of(unsubscribe_url(ada, news)))
    client.head(path_of(unsubscribe_url(ada, news)))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Stop receiving Product news" in html
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in html
    assert status_of(ada, news) == "confirmed"
    assert not response.cookies
    page = audit_page(html)
    assert page.h1 == 1 and page.scripts == 0


def test_a_one_click_post_unsubscribes_at_once_with_200_no_redirect_and_no_cookie(ada, news):
    response = one_click(unsubscribe_url(ada, news))

    assert response.status_code == 200
    assert "Location" not in response.headers
    assert "Set-Cookie" not in response.headers and not response.cookies
    assert len(response.content) < 100
    sub = Subscription.objects.get(contact=ada, mailing_list=news)
    assert sub.status == "unsubscribed" and sub.unsubscribed_at is not None
    event = ConsentEvent.objects.order_by("pk").last()
    assert (event.action, event.source, event.mailing_list) == ("withdrawn", "unsubscribe", news)
    assert AuditEntry.objects.filter(action="subscription.unsubscribed").count() == 1


def test_a_one_click_post_as_multipart_form_data_works_too(ada, news):
    response = mail_provider().post(
        path_of(unsubscribe_url(ada, news)), {"List-Unsubscribe": "One-Click"}
    )

    assert response.status_code == 200
    assert status_of(ada, news) == "unsubscribed"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("List-Unsubscribe=One-Click\r\n", "application/x-www-form-urlencoded"),
        ("List-Unsubscribe=One-Click\n", "application/x-www-form-urlencoded; charset=utf-8"),
        ("List-Unsubscribe=One-Click", "text/plain"),
        ("List-Unsubscribe=One-Click\r\n", ""),
        ("list-unsubscribe=one-click", "application/x-www-form-urlencoded"),
        ("List-Unsubscribe=One-Click&List-Unsubscribe=yes", "application/x-www-form-urlencoded"),
        ("List-Unsubscribe=%20One-Click", "application/x-www-form-urlencoded"),
    ],
)
def test_a_one_click_post_spelt_oddly_still_unsubscribes(ada, news, body, content_type):
    """Bodies a sender may really send: a trailing line break, another content type or none,
    another case, the field twice.  A request to stop the mail is not refused over spelling."""
    response = mail_provider().post(
        path_of(unsubscribe_url(ada, news)), body, content_type=content_type
    )

    assert response.status_code == 200
    assert status_of(ada, news) == "unsubscribed"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("", "application/x-www-form-urlencoded"),
        ("List-Unsubscribe=Two-Clicks", "application/x-www-form-urlencoded"),
        ("One-Click", "text/plain"),
        ("x" * 100_000 + "&List-Unsubscribe=One-Click", "text/plain"),
        ('{"List-Unsubscribe": "One-Click"}', "application/json"),
    ],
)
def test_a_post_that_does_not_say_one_click_changes_nothing(ada, news, body, content_type):
    response = mail_provider().post(
        path_of(unsubscribe_url(ada, news)), body, content_type=content_type
    )

    assert response.status_code == 400
    assert status_of(ada, news) == "confirmed"


@pytest.mark.parametrize(
    ("body", "status", "state"),
    [
        ("List-Unsubscribe=One-Click", 200, "unsubscribed"),
        ("--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n", 400, "confirmed"),
    ],
)
def test_a_multipart_post_without_a_boundary_is_read_as_any_odd_body(
    ada, news, caplog, body, status, state
):
    """multipart/form-data with no boundary cannot be parsed as a form: the body is read as text,
    like any other odd body (a one-click one unsubscribes, anything else is told what is
    expected), never Django's HTML "Request refused" page and a logged traceback."""
    response = mail_provider().post(
        path_of(unsubscribe_url(ada, news)), body, content_type="multipart/form-data"
    )

    assert response.status_code == status
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    if status == 400:
        assert "List-Unsubscribe=One-Click" in response.content.decode()
    assert status_of(ada, news) == state
    assert not [r for r in caplog.records if r.exc_info or r.name.startswith("django.security")]


def test_a_post_without_the_one_click_body_changes_nothing(ada, news):
    response = mail_provider().post(path_of(unsubscribe_url(ada, news)), {"something": "else"})

    assert response.status_code == 400
    assert "List-Unsubscribe=One-Click" in response.content.decode()
    assert status_of(ada, news) == "confirmed"


def test_leaving_one_list_leaves_the_others_alone(ada, news, events):
    one_click(unsubscribe_url(ada, news))

    assert (status_of(ada, news), status_of(ada, events)) == ("unsubscribed", "confirmed")
    assert not Suppression.objects.exists()


def test_leaving_everything_unsubscribes_every_list_withdraws_email_and_suppresses(
    ada, news, events
):
    one_click(unsubscribe_url(ada))

    assert (status_of(ada, news), status_of(ada, events)) == ("unsubscribed", "unsubscribed")
    state = current_state(ada)
    assert not state.list_granted(news.pk) and not state.list_granted(events.pk)
    assert state.standing("marketing", "email").action == "withdrawn"
    suppression = Suppression.objects.get()
    assert (suppression.email_hmac, suppression.reason) == (email_hmac(ada.email), "unsubscribed")
    assert AuditEntry.objects.filter(action="suppression.added").exists()


def test_repeating_the_post_changes_nothing_more(ada, news):
    one_click(unsubscribe_url(ada))
    counts = (ConsentEvent.objects.count(), AuditEntry.objects.count())

    again = one_click(unsubscribe_url(ada))

    assert again.status_code == 200
    assert (ConsentEvent.objects.count(), AuditEntry.objects.count()) == counts


def test_the_button_on_the_page_unsubscribes_and_says_so(client, ada, news):
    response = client.post(
        path_of(unsubscribe_url(ada, news)), {"List-Unsubscribe": "One-Click", "from": "page"}
    )

    assert response.status_code == 200
    assert "You will not receive Product news again" in response.content.decode()
    assert status_of(ada, news) == "unsubscribed"
    assert not response.cookies


def test_the_link_never_expires(ada, news):
    url = unsubscribe_url(ada, news)

    with time_machine.travel(timezone.now() + timedelta(days=3650)):
        response = one_click(url)

    assert response.status_code == 200
    assert status_of(ada, news) == "unsubscribed"


def test_a_campaign_already_sending_stops_mailing_the_person_at_once(ada, news, events):
    # The delivery engine asks may_email() for each message as it sends it.
    recipients = [ada.pk]
    assert [may_email(pk, news.pk) for pk in recipients] == [True]

    one_click(unsubscribe_url(ada, news))

    assert [may_email(pk, news.pk) for pk in recipients] == [False]
    assert may_email(ada.pk, events.pk) is True
    one_click(unsubscribe_url(ada))
    assert may_email(ada.pk, events.pk) is False


def test_a_suppressed_address_may_not_be_mailed_even_with_a_confirmed_subscription(ada, news):
    Suppression.objects.create(email_hmac=email_hmac(ada.email), reason="hard_bounce")

    assert status_of(ada, news) == "confirmed"
    assert may_email(ada.pk, news.pk) is False


def test_a_tampered_link_is_refused_and_unsubscribes_nobody(client, ada, news):
    path = path_of(unsubscribe_url(ada, news))
    forged = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")

    assert client.get(forged).status_code == 404
    assert one_click(django_settings.TIDINGS_BASE_URL + forged).status_code == 404
    assert status_of(ada, news) == "confirmed"


def test_the_link_of_a_person_since_erased_still_answers(news):
    gone = Contact.objects.create(email="gone@example.com")
    url = unsubscribe_url(gone, news)
    gone.delete()

    assert one_click(url).status_code == 200


def test_the_delivery_the_link_came_in_is_kept_with_the_withdrawal(ada, news):
    one_click(unsubscribe_url(ada, news, delivery_id=42))

    assert ConsentEvent.objects.order_by("pk").last().source_ref == "delivery:42"


# --- helpers for the campaign engine ----------------------------------------------------------
def test_the_links_are_absolute_and_hold_no_address(ada, news):
    url = unsubscribe_url(ada, news)

    assert url.startswith("http://127.0.0.1:8000/u/")
    assert preferences_url(ada).startswith("http://127.0.0.1:8000/p/")
    token = url.rsplit("/", 1)[1]
    assert read_unsubscribe_token(token).list_id == news.pk
    # The signed token may spell "ada" by chance; the address itself must not be in it.
    assert "ada@" not in url.lower() and "example.com" not in url.lower()
    assert "ada" not in signing.b64_decode(token.split(":")[0].encode()).decode().lower()
    assert read_unsubscribe_token(unsubscribe_url(ada).rsplit("/", 1)[1]).list_id is None


def test_list_unsubscribe_headers_follow_rfc_8058(ada, news, settings):
    settings.DEFAULT_FROM_EMAIL = "Example News <news@lists.example.co.uk>"
    headers = list_unsubscribe_headers(ada, news)

    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = headers["List-Unsubscribe"].split(", ")
    assert https == f"<{unsubscribe_url(ada, news)}>"
    assert mailto.startswith("<mailto:unsubscribe@lists.example.co.uk?subject=unsubscribe%20")
    token = unsubscribe_url(ada, news).rsplit("/", 1)[1]
    assert unquote(mailto[1:-1]).endswith(f"unsubscribe {token}")


def test_the_mailto_address_is_a_setting(ada, news, settings):
    settings.TIDINGS_UNSUBSCRIBE_MAILTO = "leave@lists.example.co.uk"

    headers = list_unsubscribe_headers(ada, news)

    assert "<mailto:leave@lists.example.co.uk?subject=" in headers["List-Unsubscribe"]
