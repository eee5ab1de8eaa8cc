"""Mail to operators about their work (tidings.lib.operator_mail): sent to each of them who wants
it (their CRM settings page switches kinds off; a campaign that paused itself cannot be), and a
failure to send it does not stop the work it is about (the page says the same)."""

from __future__ import annotations

import logging

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from tests.campaigns.lifecycle_helpers import make_campaign, make_list
from tests.operators import make_operator, sign_in
from tidings.campaigns import protection, second_operator
from tidings.crm.models import OperatorPreference
from tidings.lib import operator_mail
from tidings.lib.operator_mail import Kind, mail_operators

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada():
    return make_operator("ada", "owner")


@pytest.fixture
def bob():
    return make_operator("bob", "editor")


def test_each_operator_is_emailed_and_counted(settings, ada, bob):
    settings.SERVER_EMAIL = "tidings@example.co.uk"
    sent = mail_operators([bob, ada], "Subject", "Body", about="x", kind=Kind.CONFIRMATION)
    assert sent == 2
    (message,) = mail.outbox
    assert message.to == ["ada@example.co.uk", "bob@example.co.uk"]
    assert message.from_email == "tidings@example.co.uk"


def test_nobody_to_tell_sends_nothing(ada):
    assert mail_operators([], "Subject", "Body", about="x", kind=Kind.SAFETY) == 0
    ada.email = ""
    assert mail_operators([ada], "Subject", "Body", about="x", kind=Kind.SAFETY) == 0
    assert mail.outbox == []


def test_a_mail_server_that_fails_is_logged_and_answers_nothing_sent(monkeypatch, caplog, ada):
    def refuse(**_):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(operator_mail, "send_mail", refuse)
    with caplog.at_level(logging.ERROR, logger="tidings.lib.operator_mail"):
        assert mail_operators([ada], "S", "B", about="campaign 7 pausing", kind=Kind.SAFETY) == 0
    assert "could not email operators about campaign 7 pausing" in caplog.text


# --- the operator's own settings ------------------------------------------------------------------
def switch_off(client, user, *fields: str) -> None:
    """Untick ``fields`` on the operator's own CRM settings page, as they would."""
    sign_in(client, user)
    page = client.get(reverse("crm:preferences")).content.decode()
    for field in ("mail_confirmations", "mail_sent_back"):
        assert f'name="{field}"' in page and "checked" in page  # on until switched off
    data = {"notify": "none"}
    data |= {f: "on" for f in ("mail_confirmations", "mail_sent_back") if f not in fields}
    response = client.post(reverse("crm:preferences"), data)
    assert response.status_code == 302


def test_an_operator_who_switched_confirmation_requests_off_is_not_asked(client, ada, bob):
    """Bob unticks "Email me when another operator asks me to send or confirm …": a writer's
    request to send her campaign reaches Ada only."""
    switch_off(client, bob, "mail_confirmations")
    assert OperatorPreference.objects.get(user=bob).mail_confirmations is False
    writer = make_operator("wendy", "writer")
    campaign = make_campaign(make_list("News", "product news"))
    campaign.created_by = writer
    campaign.save(update_fields=["created_by"])

    assert second_operator.notify_confirmers_task.call(campaign.pk, writer.pk) == 1
    (message,) = mail.outbox
    assert message.to == ["ada@example.co.uk"]


def test_the_other_kind_switched_off_leaves_confirmation_requests_on(client, ada, bob):
    switch_off(client, bob, "mail_sent_back")
    assert mail_operators([ada, bob], "S", "B", about="x", kind=Kind.CONFIRMATION) == 2
    assert mail_operators([ada, bob], "S", "B", about="x", kind=Kind.SENT_BACK) == 1
    assert mail.outbox[1].to == ["ada@example.co.uk"]


def test_a_campaign_that_paused_itself_is_emailed_whatever_the_settings(client, ada):
    """Complaints and bounces harm every sender of the installation: the owner is told even
    with every kind they may switch off switched off (the page says so)."""
    switch_off(client, ada, "mail_confirmations", "mail_sent_back")
    page = client.get(reverse("crm:preferences")).content.decode()
    assert "paused itself because people complained" in page
    assert "cannot be switched off" in page
    campaign = make_campaign(make_list("News", "product news"))
    campaign.status = "paused"
    campaign.started_at = timezone.now()
    campaign.save(update_fields=["status", "started_at"])

    assert protection.notify_paused_task.call(campaign.pk, protection.PREFIX + "too many") == 1
    (message,) = mail.outbox
    assert message.to == ["ada@example.co.uk"]
    assert "paused itself" in message.subject
