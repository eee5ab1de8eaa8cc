"""The website's contact form, /contact: the enquiry purpose's fields, nothing more."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.audience.public_helpers import audit_page, next_ip, reset, use_outbox, write_policy
from tidings.audience.actions import do_create_contact
from tidings.audience.models import Contact
from tidings.crm.models import Enquiry
from tidings.lib.models import AuditEntry
from tidings.settings import cache_settings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(settings):
    use_outbox(settings)
    reset()
    yield
    reset()


def send(client: Client, ip: str | None = None, **values):
    data = {"name": "Ada Lovelace", "email": "ada@example.com", "message": "Do you train?"}
    return client.post("/contact", {**data, **values}, REMOTE_ADDR=ip or next_ip())


def field_names(html: str) -> set[str]:
    return {i["name"] for i in audit_page(html).inputs if i.get("type") != "hidden"}


def test_the_form_asks_exactly_the_fields_the_enquiry_purpose_collects(client):
    response = client.get("/contact")

    assert response.status_code == 200
    page = audit_page(response.text)
    assert field_names(response.text) == {
        "name",
        "email",
        "phone",
        "company",
        "job_title",
        "work_address",
        "message",
        "homepage",  # the honeypot
    }
    required = {i["name"] for i in page.inputs if "required" in i}
    assert required == {"name", "email", "message"}
    assert page.unlabelled() == []
    assert page.scripts == 0 and page.handlers == []
    assert not [i for i in page.inputs if i.get("type") == "checkbox"]  # no consent box


def test_the_form_says_why_we_keep_the_details_and_links_to_the_privacy_notice(client):
    text = client.get("/contact").text
    assert "only to answer you (legitimate interests)" in text
    assert "12 months after our last contact with you" in text
    assert 'href="/privacy"' in text


def test_a_policy_with_other_enquiry_fields_changes_the_form(client, tmp_path, settings):
    write_policy(
        tmp_path,
        settings,
        (
            'required = ["name", "email"], optional = ["phone", "company", "job_title", '
            '"work_address"] }\nsources = ["web form"',
            'required = ["email"], optional = ["company"] }\nsources = ["web form"',
        ),
    )
    assert field_names(client.get("/contact").text) == {"email", "company", "message", "homepage"}
    response = send(client, company="Analytical Engines", phone="01234")
    assert response.status_code == 303
    contact = Contact.objects.get()
    assert (contact.company, contact.phone, contact.name) == ("Analytical Engines", "", "")


def test_a_policy_without_the_web_form_as_a_source_has_no_contact_form(client, tmp_path, settings):
    write_policy(
        tmp_path,
        settings,
        ('sources = ["web form", "email",', 'sources = ["email",'),
    )
    assert client.get("/contact").status_code == 404
    assert send(client).status_code == 404


def test_sending_the_form_records_an_enquiry_from_the_web_form(client):
    response = send(client, phone="01244 000 001")

    assert response.status_code == 303 and response.url == "/contact/sent"
    enquiry = Enquiry.objects.select_related("contact").get()
    assert (enquiry.channel, enquiry.message) == ("web form", "Do you train?")
    assert (enquiry.contact.email, enquiry.contact.phone) == ("ada@example.com", "01244 000 001")
    assert enquiry.last_contact_at == enquiry.created_at
    entry = AuditEntry.objects.get(action="enquiry.received")
    assert entry.actor_label == "contact form" and "ada" not in str(entry.details)
    assert "We have your message" in client.get(response.url).text


def test_a_name_sent_with_line_breaks_and_control_characters_is_stored_on_one_line(client):
    """A crafted or pasted POST can carry what an <input> cannot: the name was stored with its
    line breaks, and showed so in the enquiry list and the mail to the team."""
    response = send(client, name="Ada\r\n  Lovelace\tKing\x07", phone="01244\n000 001")

    assert response.status_code == 303
    contact = Contact.objects.get()
    assert (contact.name, contact.phone) == ("Ada Lovelace King", "01244 000 001")
    # The message keeps its lines: it is a text area.
    send(client, email="bea@example.com", message="Line one\nLine two")
    assert Enquiry.objects.get(contact__email="bea@example.com").message == "Line one\nLine two"


def test_a_work_address_longer_than_the_api_allows_is_a_form_error(client):
    """Every other text box of a public form has a length limit; the work address (a text
    area, which a browser does not limit) took 20,000 characters from a crafted POST and stored
    them. The limit is the API's: 2,000 characters."""
    response = send(client, work_address="Street\n" + "x" * 2000)

    assert response.status_code == 200
    assert "at most 2000 characters" in response.text
    assert not Contact.objects.exists() and not Enquiry.objects.exists()
    assert 'maxlength="2000"' in client.get("/contact").text
    assert send(client, work_address="1 Street\nChester").status_code == 303
    assert Contact.objects.get().work_address == "1 Street\nChester"


def test_the_answer_is_the_same_whether_or_not_the_person_is_known(client):
    unknown = send(client, email="new@example.com")
    do_create_contact({"name": "Grace", "email": "grace@example.com"}, purpose="enquiry")
    known = send(client, email="grace@example.com", name="Someone Else")

    assert (unknown.status_code, unknown.url) == (known.status_code, known.url)
    assert client.get(unknown.url).text == client.get(known.url).text
    # An anonymous form never overwrites what we hold about a known person.
    assert Contact.objects.get(email="grace@example.com").name == "Grace"
    assert Enquiry.objects.count() == 2


def test_a_bot_that_fills_the_honeypot_gets_the_same_answer_and_stores_nothing(client):
    response = send(client, homepage="http://spam.example")

    assert (response.status_code, response.url) == (303, "/contact/sent")
    assert not Enquiry.objects.exists() and not Contact.objects.exists()


def test_mistakes_are_shown_next_to_their_fields_and_nothing_is_stored(client):
    response = send(client, email="not an address", message="")

    assert response.status_code == 200
    assert response.text.count('class="errorlist') >= 2
    assert not Enquiry.objects.exists()


def test_one_address_sending_too_often_is_refused_for_a_while(client, settings):
    settings.TIDINGS_ENQUIRY_LIMIT = (3, 600)
    answers = [send(client, ip="192.0.2.7").status_code for _ in range(4)]

    assert answers == [303, 303, 303, 429]
    assert Enquiry.objects.count() == 3
    assert send(client, ip="192.0.2.8").status_code == 303  # someone else is not held up


def test_the_form_is_protected_against_cross_site_posts():
    csrf_client = Client(enforce_csrf_checks=True)
    response = csrf_client.post(
        "/contact", {"name": "Ada", "email": "ada@example.com", "message": "Hi"}
    )
    assert response.status_code == 403
    assert not Enquiry.objects.exists()

    page = csrf_client.get("/contact")
    token = page.cookies["csrftoken"].value
    response = csrf_client.post(
        "/contact",
        {"name": "Ada", "email": "ada@example.com", "message": "Hi", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 303


def test_the_public_pages_show_no_operator_navigation(client):
    assert 'class="site-nav"' not in client.get("/contact").text


# --- special-category data --------------------------------------------------------------------
HEALTH = "Hello. I was diagnosed with diabetes last year, so I need large print. Do you train?"


def test_special_category_data_in_a_message_is_taken_out_and_the_person_told(client):
    # What the person sees is tested in tests/policy/test_screening_forms.py.
    response = send(client, message=HEALTH)

    assert response.status_code == 200
    assert "the part about health" in response.text
    assert not Enquiry.objects.exists() and not Contact.objects.exists()

    send(client, message=response.context["form"].data["message"])  # sent again, as it is now

    enquiry = Enquiry.objects.get()
    assert enquiry.message == "Hello. Do you train?"
    assert enquiry.redacted_categories == []


def test_a_policy_that_rejects_special_category_data_asks_the_person_to_take_it_out(
    client, tmp_path, settings
):
    write_policy(tmp_path, settings, ('on_detect = "redact"', 'on_detect = "reject"'))
    response = send(client, message=HEALTH)

    assert response.status_code == 200
    assert "We do not keep information about health" in response.text
    assert not Enquiry.objects.exists() and not Contact.objects.exists()


def test_an_imported_person_with_an_international_address_is_found_by_the_contact_form(client):
    # The form refused what imports take (Django's EmailField wants ASCII before the @).
    contact, _ = do_create_contact(
        {"name": "Jörg", "email": "jörg@bücher.example"}, purpose="newsletter"
    )

    response = send(client, name="Jörg", email="JÖRG@bücher.example")

    assert response.status_code in (200, 302, 303)
    assert Enquiry.objects.get().contact == contact
    assert Contact.objects.count() == 1


def test_while_redis_is_unreachable_the_form_works_and_still_limits_each_address(
    client, settings, caplog
):
    """Redis down: every public form (and the API) answered 500, as the rate limiter's counts
    live in the Redis cache.  They now count in the process's memory until Redis is back."""
    settings.TIDINGS_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CACHES = cache_settings(settings.TIDINGS_REDIS_URL)  # as tidings.settings makes it
    settings.TIDINGS_ENQUIRY_LIMIT = (2, 600)

    answers = [send(client, ip="192.0.2.9").status_code for _ in range(3)]

    assert answers == [303, 303, 429]
    assert Enquiry.objects.count() == 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "tidings.lib.cache"]
    assert len(warnings) == 1 and "Redis is unreachable" in warnings[0]


@pytest.fixture
def not_redis():
    """A port where something other than Redis answers (a web server: HTTP 400 to anything), as
    when TIDINGS_REDIS_URL names the wrong port."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join()
    server.close()


def test_with_something_else_than_redis_at_its_address_the_form_still_works(
    client, settings, caplog, not_redis
):
    """Redis's address answered by another service (a wrong port): the cache raised redis-py's
    InvalidResponse, which is not a ConnectionError, so every public form and /metrics answered
    500 instead of counting in the process's memory as they do while Redis is down."""
    settings.TIDINGS_REDIS_URL = not_redis
    settings.CACHES = cache_settings(settings.TIDINGS_REDIS_URL)
    settings.TIDINGS_ENQUIRY_LIMIT = (2, 600)

    answers = [send(client, ip="192.0.2.10").status_code for _ in range(3)]

    assert answers == [303, 303, 429]
    warnings = [r.getMessage() for r in caplog.records if r.name == "tidings.lib.cache"]
    assert len(warnings) == 1 and "Redis is unreachable" in warnings[0]
