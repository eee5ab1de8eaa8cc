"""A help-desk day in a real browser: a visitor writes through /contact; the operator who takes
enquiries is emailed and the visitor acknowledged (both through a real SMTP server, the
acknowledgement through the delivery engine); the operator answers from tidings; the visitor's
answer, with a health remark in it, is piped into ``tidings inbound process`` and appears in the
conversation redacted; the operator closes the enquiry; the retention dry run finds it on the
date its page gives, and not the day before."""

from __future__ import annotations

import io
import re
import sys
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from playwright.sync_api import Page, expect

from tests.audience.public_helpers import reset
from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tests.conftest import OPERATOR_PASSWORD
from tests.crm.helpers import SUPPORT, mail, operator
from tidings.campaigns.engine import deliver_pending
from tidings.crm.models import ConversationMessage, Enquiry
from tidings.crm.notifications import send_pending


@pytest.fixture
def sink(settings, live_server):
    reset()
    with SmtpSink() as server:
        settings.TIDINGS_BASE_URL = live_server.url
        settings.TIDINGS_SUPPORT_ADDRESS = SUPPORT
        settings.TIDINGS_TRANSPORTS = transports_for(server)  # the delivery engine
        settings.MAILERS = {  # the installation's mailer (operators' notifications)
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": server.port, "timeout": 10},
            }
        }
        yield server
    reset()


def pipe(raw: bytes) -> str:
    """``tidings inbound process`` with the mail on standard input, as a mail server runs it."""
    stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(raw))
    try:
        out = io.StringIO()
        call_command("inbound", "process", stdout=out)
        return out.getvalue()
    finally:
        sys.stdin = stdin


def test_an_enquiry_from_the_contact_form_to_its_close(page: Page, sink, live_server):
    ada = operator("ada", notify="each", takes_enquiries=True)

    # The visitor writes.
    page.goto("/contact")
    page.get_by_label("Name", exact=False).first.fill("Grace Hopper")
    page.get_by_label("Email", exact=False).first.fill("grace@example.org")
    page.get_by_label("Your message").fill("Could you show us a demo of the reporting?")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")
    enquiry = Enquiry.objects.get()
    assert enquiry.owner == ada

    # What the worker does: the operator's email, then the engine's queue.
    assert send_pending() == 1
    deliver_pending(max_seconds=10)
    by_recipient = {r.recipient: r.message for r in sink.received}
    told = by_recipient[ada.email]
    assert f"enquiry #{enquiry.pk} from Grace Hopper" in told["Subject"]
    ack = by_recipient["grace@example.org"]
    ack_text = ack.get_body(("plain",)).get_content()
    assert "Why: Answering your enquiries (legitimate interests)." in ack_text
    assert "How long: we keep it 12 months after our last contact with you." in ack_text
    assert f"{live_server.url}/privacy" in ack_text
    assert str(ack["From"]) == SUPPORT

    # The operator answers from tidings.
    page.goto("/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/crm/")
    expect(page.get_by_role("heading", name="My enquiries (1)")).to_be_visible()
    # My work names each enquiry by its subject (the person's own, screened).
    from tidings.crm.queues import shown_subject

    page.get_by_role("link", name=shown_subject(enquiry)).first.click()
    page.get_by_label("Reply", exact=True).fill("Of course. Does Tuesday at 10:00 suit you?")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status").or_(page.locator(".messages"))).to_contain_text("Reply sent")
    deliver_pending(max_seconds=10)
    answer = sink.received[-1].message
    assert answer["To"].addresses[0].addr_spec == "grace@example.org"
    assert answer["In-Reply-To"] == ack["Message-ID"]

    # The visitor answers; the mail server pipes it in.
    out = pipe(
        mail(
            "Grace Hopper <grace@example.org>",
            str(answer["Reply-To"]),
            subject=f"Re: {answer['Subject']}",
            body=(
                "Tuesday is fine. I may be slow to reply, I am being treated for cancer.\n\n"
                "Thanks,\nGrace\n\n"
                "On Mon, 9 Mar 2026, Example Support <support@example.co.uk> wrote:\n"
                "> Of course. Does Tuesday at 10:00 suit you?\n"
            ),
            headers={"In-Reply-To": str(answer["Message-ID"])},
        )
    )
    assert "processed" in out
    page.reload()
    conversation = page.locator(".thread")
    expect(conversation).to_contain_text("Tuesday is fine. [removed: health]")
    expect(conversation).not_to_contain_text("cancer")
    expect(conversation).not_to_contain_text("wrote:")  # the quoted history was stripped
    expect(
        page.get_by_text("Screening removed information from this message (health)")
    ).to_be_visible()
    (answered,) = ConversationMessage.objects.filter(direction="in", enquiry=enquiry)
    assert answered.text == "Tuesday is fine. [removed: health]"  # no signature, no quote

    # The operator closes it.
    page.get_by_label("Status", exact=True).select_option("won")
    page.locator("form.inline-fields").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Closed: won").first).to_be_visible()
    enquiry.refresh_from_db()
    assert enquiry.status == "won"

    # The page says when it goes; the retention dry run finds it then, and not before.
    retention = page.locator("section.retention").inner_text()
    day = re.search(r"Erased on (\d{4}-\d{2}-\d{2})", retention).group(1)
    erase_on = datetime.fromisoformat(f"{day}T12:00:00+00:00")

    def dry_run(at: datetime) -> str:
        out = io.StringIO()
        with time_machine.travel(at, tick=False):
            call_command("retention", "run", "--dry-run", stdout=out)
        return out.getvalue()

    before = dry_run(erase_on - timedelta(days=1))
    after = dry_run(erase_on + timedelta(days=1))
    assert re.search(r"Enquiries\s+would remove 0\b", before), before
    assert re.search(r"Enquiries\s+would remove 1\b", after), after
