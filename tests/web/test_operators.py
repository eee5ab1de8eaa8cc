"""The operators page: invitations, roles, deactivation, signing out everywhere, password reset."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.test import Client

from tests.operators import OPERATOR_PASSWORD, make_operator, sign_in
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a long new passphrase 42"


@pytest.fixture
def owner_client(owner):
    client = Client()
    sign_in(client, owner)
    return client


def last_mail_to(address: str):
    """The last message sent to ``address`` (pytest-django keeps sent mail in mail.outbox)."""
    return [m for m in mail.outbox if address in m.to][-1]


def link_in(message) -> str:
    link = re.search(r"http://\S+", message.body).group(0)
    return link.removeprefix("http://127.0.0.1:8000")


def invite(client: Client, email: str, role: str, capture) -> str:
    with capture(execute=True):
        response = client.post("/settings/operators/invite/", {"email": email, "role": role})
    assert response.status_code == 302, response.text
    return link_in(last_mail_to(email))


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_operators_page_lists_operators_with_their_roles_and_two_factor(owner_client):
    make_operator("eddie", "editor")
    make_operator("anna", "analyst")

    text = owner_client.get("/settings/operators/").text

    assert "<h1>Operators</h1>" in text
    assert "Owner (superuser)" in text
    assert re.search(r'<option value="editor" selected>Editor</option>', text)
    assert re.search(r'<option value="analyst" selected>Analyst</option>', text)
    assert '<label for="id_email">Email address:</label>' in text


def test_an_invited_operator_sets_a_password_and_has_their_role(
    owner_client, django_capture_on_commit_callbacks
):
    link = invite(
        owner_client,
        "new.person@example.net",
        "privacy_officer",
        django_capture_on_commit_callbacks,
    )

    message = last_mail_to("new.person@example.net")
    assert message.subject == "You are invited to tidings"
    assert "as: Privacy officer" in message.body
    visitor = Client()
    page = visitor.get(link)
    assert page.status_code == 200 and "Choose a password to finish" in page.text
    response = visitor.post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.url == "/login/"

    user = get_user_model().objects.get(username="new.person@example.net")
    assert user.is_staff and user.check_password(NEW_PASSWORD)
    assert set(user.groups.values_list("name", flat=True)) == {"privacy_officer"}
    assert (
        visitor.post(
            "/login/", {"username": "new.person@example.net", "password": NEW_PASSWORD}
        ).status_code
        == 302
    )
    actions = list(
        AuditEntry.objects.filter(object_id=str(user.pk)).values_list("action", flat=True)
    )
    assert {"operator.invited", "operator.joined"} <= set(actions)


def test_an_invitation_link_works_once(owner_client, django_capture_on_commit_callbacks):
    link = invite(owner_client, "once@example.net", "editor", django_capture_on_commit_callbacks)
    Client().post(link, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    response = Client().get(link)

    assert response.status_code == 404
    assert "This invitation is not valid" in response.text


def test_an_invitation_link_works_for_seven_days(
    owner_client, django_capture_on_commit_callbacks, settings
):
    assert settings.TIDINGS_INVITATION_DAYS == 7
    link = invite(owner_client, "late@example.net", "editor", django_capture_on_commit_callbacks)
    now = dt.datetime.now(dt.UTC)

    with time_machine.travel(now + dt.timedelta(days=6, hours=23)):
        assert Client().get(link).status_code == 200
    with time_machine.travel(now + dt.timedelta(days=7, hours=1)):
        assert Client().get(link).status_code == 404


def test_inviting_an_address_that_has_an_account_is_refused_with_a_message(
    owner_client, django_capture_on_commit_callbacks
):
    invite(owner_client, "twice@example.net", "editor", django_capture_on_commit_callbacks)

    response = owner_client.post(
        "/settings/operators/invite/", {"email": "twice@example.net", "role": "editor"}
    )

    assert response.status_code == 400
    assert "There is already an account with this address." in response.text


def test_changing_a_role_takes_effect_at_once_and_is_audited(owner_client):
    eddie = make_operator("eddie", "editor")
    eddie_client = Client()
    sign_in(eddie_client, eddie)
    assert eddie_client.get("/campaigns/").status_code == 200

    owner_client.post(f"/settings/operators/{eddie.pk}/role/", {"role": "analyst"})

    assert eddie_client.get("/campaigns/").status_code == 403
    entry = AuditEntry.objects.get(action="operator.role_changed")
    assert entry.details == {"before": ["editor"], "after": "analyst"}


def test_the_last_owner_cannot_be_demoted_or_deactivated(client, settings):
    olivia = make_operator("olivia", "owner")
    sign_in(client, olivia)

    response = client.post(
        f"/settings/operators/{olivia.pk}/role/", {"role": "editor"}, follow=True
    )

    assert "This is the last owner" in response.text
    assert "owner" in olivia.groups.values_list("name", flat=True)


def test_a_deactivated_operator_is_signed_out_and_cannot_sign_in(owner_client):
    eddie = make_operator("eddie", "editor")
    eddie_client = Client()
    sign_in(eddie_client, eddie)

    owner_client.post(f"/settings/operators/{eddie.pk}/deactivate/")

    assert eddie_client.get("/").status_code == 302
    assert not Client().login(username="eddie", password=OPERATOR_PASSWORD)
    assert AuditEntry.objects.get(action="operator.deactivated").details == {"sessions": 1}
    owner_client.post(f"/settings/operators/{eddie.pk}/reactivate/")
    assert Client().login(username="eddie", password=OPERATOR_PASSWORD)


def test_signing_an_operator_out_everywhere_ends_all_their_sessions(owner_client):
    eddie = make_operator("eddie", "editor")
    laptop, phone = Client(), Client()
    sign_in(laptop, eddie)
    sign_in(phone, eddie)

    owner_client.post(f"/settings/operators/{eddie.pk}/sign-out/")

    assert not is_signed_in(laptop) and not is_signed_in(phone)
    assert laptop.get("/").url == "/login/?next=/"
    assert owner_client.get("/").status_code == 200
    assert AuditEntry.objects.get(action="operator.signed_out_everywhere").details == {
        "sessions": 2
    }


def test_an_operator_signs_themselves_out_everywhere_from_their_account_page(client):
    eddie = make_operator("eddie", "editor")
    other = Client()
    sign_in(client, eddie)
    sign_in(other, eddie)

    response = client.post("/account/sign-out-everywhere/", follow=True)

    assert response.redirect_chain[-1][0] == "/login/"
    assert "Signed out of 2 session(s)" in response.text
    assert not is_signed_in(client) and not is_signed_in(other)


def test_an_owner_resets_the_second_factor_of_an_operator_who_lost_their_phone(owner_client):
    eddie = make_operator("eddie", "editor")
    sign_in(Client(), eddie)

    owner_client.post(f"/settings/operators/{eddie.pk}/reset-two-factor/")

    from django_otp import user_has_device

    assert not user_has_device(eddie)
    assert AuditEntry.objects.filter(action="operator.2fa_reset", object_id=str(eddie.pk)).exists()


def test_a_forgotten_password_is_reset_through_an_emailed_link(
    client, django_capture_on_commit_callbacks
):
    make_operator("eddie", "editor")

    response = client.post("/login/reset/", {"email": "eddie@example.co.uk"})
    assert response.url == "/login/reset/sent/"
    message = last_mail_to("eddie@example.co.uk")
    assert message.subject == "Choose a new tidings password"
    link = link_in(message)
    response = client.get(link)
    assert response.status_code == 302  # Django moves the token out of the address
    form_url = response.url
    response = client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    assert response.url == "/login/reset/done/"
    assert Client().login(username="eddie", password=NEW_PASSWORD)
    assert AuditEntry.objects.filter(action="operator.password_reset").exists()
    assert "This link is not valid" in client.get(link, follow=True).text


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client):
    response = client.post("/login/reset/", {"email": "nobody@example.org"})

    assert response.url == "/login/reset/sent/"
    assert mail.outbox == []


def test_password_reset_mails_to_one_address_are_limited_without_telling(client, settings):
    # Anyone may ask: without a limit a script made tidings mail an operator without end.
    from django.core.cache import cache

    cache.clear()
    settings.TIDINGS_PASSWORD_RESETS_PER_ADDRESS = (3, 3600)
    make_operator("eddie", "editor")

    for n in range(5):
        response = Client(REMOTE_ADDR=f"203.0.113.{n}").post(
            "/login/reset/", {"email": "eddie@example.co.uk"}
        )
        assert response.url == "/login/reset/sent/"  # the same answer, sent or not

    assert len([m for m in mail.outbox if "eddie@example.co.uk" in m.to]) == 3


def test_password_reset_requests_from_one_visitor_are_limited(client, settings):
    from django.core.cache import cache

    cache.clear()
    settings.TIDINGS_PASSWORD_RESET_LIMIT = (5, 600)

    answers = [
        client.post("/login/reset/", {"email": f"n{n}@example.org"}).status_code for n in range(7)
    ]

    assert answers == [302] * 5 + [429] * 2


def test_the_sign_in_page_offers_the_password_reset(client):
    assert '<a href="/login/reset/">Forgotten your password?</a>' in client.get("/login/").text


def test_the_navigation_offers_operators_only_to_roles_with_the_settings_permission(owner_client):
    eddie_client = Client()
    sign_in(eddie_client, make_operator("eddie", "editor"))

    assert 'href="/settings/operators/"' in owner_client.get("/").text
    assert 'href="/settings/operators/"' not in eddie_client.get("/").text


def test_createsuperuser_still_makes_an_owner(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW_PASSWORD)
    call_command(
        "createsuperuser", "--noinput", username="root", email="root@example.net", verbosity=0
    )

    client = Client()
    assert client.login(username="root", password=NEW_PASSWORD)
    assert client.get("/settings/operators/").status_code == 200
