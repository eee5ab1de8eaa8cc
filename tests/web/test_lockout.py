"""Repeated wrong passwords lock the sign-in out for a while (django-axes), with a clear message."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client

from tests.operators import OPERATOR_PASSWORD, make_operator
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def eddie(db):
    return make_operator("eddie", "editor")


def attempt(client: Client, password: str):
    return client.post("/login/", {"username": "eddie", "password": password})


def fail(client: Client, times: int) -> None:
    for _ in range(times):
        attempt(client, "wrong password")


def test_four_wrong_passwords_still_leave_the_right_one_working(client, eddie, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    fail(client, 4)

    assert attempt(client, OPERATOR_PASSWORD).status_code == 302


def test_the_fifth_wrong_password_locks_out_with_a_clear_message(client, eddie):
    fail(client, 4)

    response = attempt(client, "wrong password")

    assert response.status_code == 429
    assert "<h1>Too many failed sign-ins</h1>" in response.text
    assert "locked after 5 wrong passwords. Try again in 15 minutes" in response.text
    assert 'href="/login/reset/"' in response.text


def test_a_locked_out_sign_in_refuses_even_the_right_password(client, eddie):
    fail(client, 5)

    response = attempt(client, OPERATOR_PASSWORD)

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_ends_after_the_cool_off(client, eddie):
    fail(client, 5)

    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)):
        assert attempt(client, OPERATOR_PASSWORD).status_code == 302


def test_the_lockout_is_for_one_address_not_the_whole_account(client, eddie):
    fail(client, 5)

    elsewhere = Client(REMOTE_ADDR="192.0.2.44")
    assert attempt(elsewhere, OPERATOR_PASSWORD).status_code == 302


def test_an_administrator_lifts_lockouts_with_axes_reset(client, eddie):
    fail(client, 5)

    call_command("axes_reset", verbosity=0)

    assert attempt(client, OPERATOR_PASSWORD).status_code == 302


def test_the_lockout_is_in_the_audit_log_naming_the_operator_by_id_only(client, eddie):
    fail(client, 5)

    entry = AuditEntry.objects.get(action="operator.locked_out")
    assert entry.object_id == str(eddie.pk)
    assert "eddie" not in str(entry.details)
    assert AuditEntry.objects.filter(action="operator.sign_in_failed").count() == 4
