"""Signed tokens from email links never reach the logs."""

import logging

import pytest

from tidings.web.log_filters import RedactTokens, redact


def test_tokens_in_paths_are_replaced():
    line = "Not Found: /p/eyJjIjoxMjN9:1vNx8Q:abcdefghijklmnopqrstuvwxyz012345/"
    assert redact(line) == "Not Found: /p/[token]/"
    assert redact("GET /u/AbCdEfGhIjKlMnOpQr HTTP/1.1") == "GET /u/[token] HTTP/1.1"
    assert redact("/privacy and /contacts/12/") == "/privacy and /contacts/12/"


@pytest.mark.django_db
def test_a_404_for_a_token_link_logs_no_token(client, caplog):
    caplog.handler.addFilter(RedactTokens())
    with caplog.at_level(logging.WARNING, logger="django.request"):
        client.get("/p/eyJjIjoxMjN9:1vNx8Q:thisisnotavalidsignatureatall/nope/")
    assert "thisisnotavalid" not in caplog.text


def test_the_console_log_handler_redacts_tokens():
    root = logging.getLogger()
    handlers = [h for h in root.handlers if any(isinstance(f, RedactTokens) for f in h.filters)]
    assert handlers, "settings.LOGGING must attach RedactTokens to the console handler"


def test_invitation_and_password_reset_tokens_are_replaced():
    assert (
        redact("GET /join/MTI/cz8x1a-0b6e1f2c3d4e5f6a7b8c9d0e1f2a3b4c/") == "GET /join/MTI/[token]/"
    )
    assert (
        redact("GET /login/reset/MTI/cz8x1a-0b6e1f2c3d4e5f6a7b8c9d0e1f2a3b4c/")
        == "GET /login/reset/MTI/[token]/"
    )
    assert redact("GET /login/reset/done/") == "GET /login/reset/done/"
