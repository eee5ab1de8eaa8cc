"""Journey mail is tracked as campaign mail is: the pixel and rewritten links only for people
whose tracking consent allows it, and the journey page counts opens and clicks by people with
machine opens apart.  The endpoints are called as a mail client would; the buffered events are
written with ``ingest.flush()``."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.audience.public_helpers import refuse_tracking
from tests.journeys.helpers import make_list, make_template, subscriber, welcome
from tests.operators import make_operator, sign_in
from tidings.campaigns.models import OutgoingMessage
from tidings.journeys import engine, tracking
from tidings.journeys.actions import do_enrol
from tidings.journeys.models import JourneyMailEvent
from tidings.lib import ingest

pytestmark = pytest.mark.django_db

BODY = "Hello,\n\nRead [the guide](https://example.net/guide?from=mail&x=1) today."
CLICK = re.compile(r'href="(http://[^"]+/t/j/c/[A-Za-z0-9_-]{40})"')
PIXEL = re.compile(r'<img src="(http://[^"]+/t/j/o/[A-Za-z0-9_-]{40})" width="1" height="1"')
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _journey():
    template = make_template("Welcome")
    template.body = BODY
    template.save()
    return welcome()


def _mail_to(contact) -> OutgoingMessage:
    message = OutgoingMessage.objects.get(contact=contact)
    # Delivered an hour ago: an open seconds after delivery would be a scanner's (rule 4).
    OutgoingMessage.objects.filter(pk=message.pk).update(
        status=OutgoingMessage.Status.SENT, sent_at=timezone.now() - timedelta(hours=1)
    )
    return message


def _path(url: str) -> str:
    return urlsplit(url).path


def test_a_click_and_an_open_by_a_person_count_on_the_step_and_machines_apart(client):
    journey = _journey()
    news = make_list()
    ann = subscriber("Ann Example", news, email="ann@example.org")
    bob = subscriber("Bob Example", news, email="bob@example.org")
    for contact in (ann, bob):
        do_enrol(journey, contact)
    engine.advance_due()
    ann_html, bob_html = _mail_to(ann).html, _mail_to(bob).html
    assert "https://example.net/guide" not in ann_html  # rewritten
    [link] = CLICK.findall(ann_html)
    [ann_pixel] = PIXEL.findall(ann_html)
    [bob_pixel] = PIXEL.findall(bob_html)

    response = client.get(_path(link), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302
    assert response["Location"] == "https://example.net/guide?from=mail&x=1"
    assert client.get(_path(ann_pixel), HTTP_USER_AGENT=BROWSER)["Content-Type"] == "image/gif"
    # Bob's mail client is Apple's privacy proxy: a machine, not Bob reading.
    client.get(_path(bob_pixel), HTTP_USER_AGENT="Mozilla/5.0")
    ingest.flush()
    assert JourneyMailEvent.objects.count() == 3

    sign_in(client, make_operator("eddie", "editor"))
    page = client.get(reverse("journeys:detail", args=[journey.pk])).content.decode()
    row = re.search(r'<tr><th scope="row">hello</th>(.*?)</tr>', page).group(1)
    # Sent, opened by people, clicked by people, opened by machines only.
    assert re.findall(r"<td>(\d+)</td>", row) == ["2", "1", "1", "1"]
    assert "1 opened, 1 clicked" in page


def test_a_person_who_refused_tracking_gets_no_pixel_and_the_real_links():
    journey = _journey()
    ann = subscriber("Ann Example", make_list(), email="ann@example.org")
    refuse_tracking(ann)
    do_enrol(journey, ann)
    engine.advance_due()
    html = OutgoingMessage.objects.get(contact=ann).html
    assert not PIXEL.search(html) and not CLICK.search(html)
    assert 'href="https://example.net/guide?from=mail&amp;x=1"' in html


def test_a_journey_mail_sent_before_a_person_refused_tracking_records_nothing_of_them(client):
    journey = _journey()
    ann = subscriber("Ann Example", make_list(), email="ann@example.org")
    do_enrol(journey, ann)
    engine.advance_due()
    html = _mail_to(ann).html
    [link], [pixel] = CLICK.findall(html), PIXEL.findall(html)
    refuse_tracking(ann)

    clicked = client.get(_path(link), HTTP_USER_AGENT=BROWSER)
    client.get(_path(pixel), HTTP_USER_AGENT=BROWSER)
    ingest.flush()

    assert clicked.status_code == 302  # the link still works
    assert not JourneyMailEvent.objects.exists()


def test_a_forged_or_campaign_token_is_a_404(client):
    journey = _journey()
    token = tracking.make_token(1, 0, journey.pk, 0)
    forged = ("A" if token[0] != "A" else "B") + token[1:]
    assert client.get(f"/t/j/c/{forged}").status_code == 404
    assert client.get(f"/t/j/o/{token}").status_code == 404  # a link token is not the pixel


CLICK_STEPS = [
    {"id": "hello", "kind": "send_email", "template": "Welcome", "subject": "Hello"},
    {
        "id": "click",
        "kind": "wait_click",
        "timeout": "3 days",
        "url": "https://example.net/guide?from=mail&x=1",
        "then": "clicked",
        "else": "nudge",
    },
    {"id": "clicked", "kind": "end"},
    {"id": "nudge", "kind": "send_email", "template": "Welcome", "subject": "Did you see it?"},
]


def _clicker(name: str, email: str):
    template = make_template("Welcome")
    template.body = BODY + "\n\nOr [the blog](https://example.net/blog)."
    template.save()
    journey = welcome(steps=CLICK_STEPS, goals=[])
    contact = subscriber(name, make_list(), email=email)
    do_enrol(journey, contact)
    engine.advance_due()  # sends hello, arms the wait
    html = _mail_to(contact).html
    return journey, contact, CLICK.findall(html)


def _history(contact) -> list[tuple[str, str, str]]:
    from tidings.journeys.models import EnrolmentStep

    return list(
        EnrolmentStep.objects.filter(enrolment__contact=contact)
        .order_by("seq")
        .values_list("step", "outcome", "reason")
    )


def test_a_persons_click_on_the_awaited_link_moves_them_on_at_once(client):
    _, ann, (guide, blog) = _clicker("Ann Example", "ann@example.org")
    client.get(_path(blog), HTTP_USER_AGENT=BROWSER)  # not the link the step waits for
    client.get(_path(guide), HTTP_USER_AGENT="curl/8.5.0")  # a link checker
    ingest.flush()
    assert _history(ann)[-1] == ("click", "waiting", "")
    client.get(_path(guide), HTTP_USER_AGENT=BROWSER)
    ingest.flush()
    engine.advance_due()
    assert [h[:2] for h in _history(ann)] == [
        ("hello", "sent"),
        ("click", "waiting"),
        ("click", "branched"),
        ("clicked", "completed"),
    ]
    assert _history(ann)[2][2] == "clicked"
    assert OutgoingMessage.objects.filter(contact=ann).count() == 1


def test_without_a_click_the_timeout_takes_the_else_branch(time_machine):
    _, bob, _ = _clicker("Bob Example", "bob@example.org")
    time_machine.move_to(timezone.now() + timedelta(days=3, minutes=1), tick=False)
    engine.advance_due()
    assert _history(bob)[2:] == [("click", "branched", "timed out"), ("nudge", "sent", "")]


def test_a_posted_event_cannot_pose_as_a_click():
    from tidings.journeys.triggers import do_record_event

    _, cid, _ = _clicker("Cid Example", "cid@example.org")
    do_record_event(cid.email, "journey:click")
    assert _history(cid)[-1][:2] == ("click", "waiting")


def test_the_access_package_lists_the_persons_opens_and_clicks(client):
    from tidings.journeys.personal_data import export_mail_events

    _, ann, (guide, _) = _clicker("Ann Example", "ann@example.org")
    client.get(_path(guide), HTTP_USER_AGENT=BROWSER)
    ingest.flush()
    [row] = export_mail_events(ann)
    assert (row["email of step"], row["what"], row["by"]) == ("hello", "clicked a link", "you")
