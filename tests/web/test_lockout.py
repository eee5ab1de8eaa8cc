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


def test_behind_a_proxy_the_lockout_is_for_the_address_the_proxy_saw(client, eddie, settings):
    # Every request comes from the proxy (127.0.0.1); the visitor is the last X-Forwarded-For
    # entry, as for the rate limits.  Counted by the proxy's address, five wrong passwords from
    # anyone on the internet locked the operator themselves out, again and again.
    settings.TIDINGS_BEHIND_PROXY = True
    attacker = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.66")
    fail(attacker, 5)
    assert attempt(attacker, OPERATOR_PASSWORD).status_code == 429

    eddie_at_work = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert attempt(eddie_at_work, OPERATOR_PASSWORD).status_code == 302

    # ...and a forged entry in front of the proxy's own does not give the attacker a fresh count.
    forged = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9, 192.0.2.66")
    assert attempt(forged, OPERATOR_PASSWORD).status_code == 429


def test_an_ipv6_visitor_is_locked_out_by_their_network_not_one_address(client, eddie):
    for i in range(5):
        attempt(Client(REMOTE_ADDR=f"2001:db8:5:6::{i + 1:x}"), "wrong password")

    fresh_address = Client(REMOTE_ADDR="2001:db8:5:6::99")
    assert attempt(fresh_address, OPERATOR_PASSWORD).status_code == 429
    assert attempt(Client(REMOTE_ADDR="2001:db8:5:7::1"), OPERATOR_PASSWORD).status_code == 302


def test_a_request_without_an_address_is_counted_without_one(rf):
    # axes keeps the address in an address column: PostgreSQL refused "unknown" (a force_login,
    # a request the server gave no address), and every such sign-in was a 500.
    from tidings.lib.ratelimit import lockout_address

    request = rf.post("/login/")
    del request.META["REMOTE_ADDR"]
    assert lockout_address(request) is None
    request.META["REMOTE_ADDR"] = "not an address"
    assert lockout_address(request) is None
    request.META["REMOTE_ADDR"] = "2001:db8:5:6::7"
    assert lockout_address(request) == "2001:db8:5:6::"
