"""Mail to operators about their work (tidings.lib.operator_mail): sent to each of them, and a
failure to send it does not stop the work it is about (the page says the same)."""

from __future__ import annotations

import logging

from django.core import mail

from tidings.lib import operator_mail
from tidings.lib.operator_mail import mail_operators


def test_each_operator_is_emailed_and_counted(settings):
    settings.SERVER_EMAIL = "tidings@example.co.uk"
    sent = mail_operators(["ada@example.co.uk", "bob@example.co.uk"], "Subject", "Body", about="x")
    assert sent == 2
    (message,) = mail.outbox
    assert message.to == ["ada@example.co.uk", "bob@example.co.uk"]
    assert message.from_email == "tidings@example.co.uk"


def test_nobody_to_tell_sends_nothing():
    assert mail_operators([], "Subject", "Body", about="x") == 0
    assert mail.outbox == []


def test_a_mail_server_that_fails_is_logged_and_answers_nothing_sent(monkeypatch, caplog):
    def refuse(**_):
        raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(operator_mail, "send_mail", refuse)
    with caplog.at_level(logging.ERROR, logger="tidings.lib.operator_mail"):
        assert mail_operators(["ada@example.co.uk"], "S", "B", about="campaign 7 pausing") == 0
    assert "could not email operators about campaign 7 pausing" in caplog.text
