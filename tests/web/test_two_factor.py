"""Two-factor sign-in: who must enrol, enrolling by QR code, codes at sign-in, recovery codes."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.operators import OPERATOR_PASSWORD, make_operator, sign_in
from tests.pages import other_scripts
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _second_factor_as_installed(settings):
    settings.TIDINGS_REQUIRE_2FA = "privileged"


def code_for(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """What the operator's authenticator app shows (``steps_ahead`` x 30 s later)."""
    device.refresh_from_db()
    value = totp(device.bin_key, device.step, device.t0, device.digits, steps_ahead)
    return f"{value:0{device.digits}d}"


def password_sign_in(client: Client, username: str, next_url: str = "/"):
    return client.post(
        f"/login/?next={next_url}",
        {"username": username, "password": OPERATOR_PASSWORD, "next": next_url},
    )


def enrol(client: Client, username: str) -> tuple[TOTPDevice, list[str]]:
    """Sign in with the password, enrol an authenticator, return it and the recovery codes."""
    password_sign_in(client, username)
    client.get("/account/two-factor/")
    device = TOTPDevice.objects.get(user__username=username, confirmed=False)
    response = client.post("/account/two-factor/", {"code": code_for(device), "next": "/"})
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.text)
    device.refresh_from_db()
    return device, codes


def actions_of(username: str) -> list[str]:
    return list(
        AuditEntry.objects.filter(object_type="auth.user", object_id__in=_ids(username))
        .order_by("pk")
        .values_list("action", flat=True)
    )


def _ids(username: str) -> list[str]:
    from django.contrib.auth import get_user_model

    return [
        str(pk)
        for pk in get_user_model().objects.filter(username=username).values_list("pk", flat=True)
    ]


def test_an_owner_who_signs_in_with_a_password_is_sent_to_set_up_two_factor_first(client):
    make_operator("olivia", "owner")

    response = password_sign_in(client, "olivia", "/audience/contacts/")
    assert response.url == "/audience/contacts/"
    response = client.get("/audience/contacts/")

    assert response.status_code == 302
    assert response.url == "/account/two-factor/?next=%2Faudience%2Fcontacts%2F"


def test_the_enrolment_page_shows_an_inline_qr_code_and_the_key_without_scripts(client):
    make_operator("olivia", "owner")
    password_sign_in(client, "olivia")

    text = client.get("/account/two-factor/").text

    assert "<h1>Set up two-factor sign-in</h1>" in text
    assert "<svg" in text and "QR code" in text
    assert "<img" not in text and not other_scripts(text)
    device = TOTPDevice.objects.get(user__username="olivia")
    assert not device.confirmed
    secret = re.search(r'<code class="otp-secret" id="otp-secret">([A-Z2-7 ]+)</code>', text)
    assert secret is not None and len(secret.group(1).replace(" ", "")) == 32
    assert "Your role can see and export personal data" in text


def test_enrolling_with_a_right_code_turns_two_factor_on_and_shows_ten_recovery_codes(client):
    make_operator("olivia", "owner")

    device, codes = enrol(client, "olivia")

    assert device.confirmed
    assert len(codes) == 10 and len(set(codes)) == 10
    assert client.get("/").status_code == 200
    assert "operator.2fa_enrolled" in actions_of("olivia")


def test_a_wrong_code_at_enrolment_is_refused_with_an_explanation(client):
    make_operator("olivia", "owner")
    password_sign_in(client, "olivia")
    client.get("/account/two-factor/")

    response = client.post("/account/two-factor/", {"code": "000000"})

    assert response.status_code == 200
    assert 'role="alert"' in response.text and "That code does not match" in response.text
    assert not TOTPDevice.objects.get(user__username="olivia").confirmed
    assert client.get("/").status_code == 302


def test_an_enrolled_operator_signs_in_with_password_then_code(client):
    make_operator("olivia", "owner")
    device, _ = enrol(client, "olivia")
    client.post("/logout/")

    password_sign_in(client, "olivia", "/crm/")
    response = client.get("/crm/")
    assert response.url == "/login/code/?next=%2Fcrm%2F"
    page = client.get(response.url)
    assert '<input type="hidden" name="next" value="/crm/">' in page.text
    response = client.post("/login/code/", {"code": code_for(device, 1), "next": "/crm/"})

    assert response.status_code == 302 and response.url == "/crm/"
    assert client.get("/crm/").status_code == 200
    assert actions_of("olivia")[-1] == "operator.2fa_verified"


def test_a_wrong_code_at_sign_in_is_refused_and_audited(client):
    make_operator("olivia", "owner")
    enrol(client, "olivia")
    client.post("/logout/")
    password_sign_in(client, "olivia")

    response = client.post("/login/code/", {"code": "123456", "next": "/"})

    assert response.status_code == 200
    assert "That code is not right" in response.text
    assert client.get("/").url.startswith("/login/code/")
    assert actions_of("olivia")[-1] == "operator.2fa_failed"


def test_a_recovery_code_signs_in_once(client):
    make_operator("olivia", "owner")
    _, codes = enrol(client, "olivia")
    client.post("/logout/")

    password_sign_in(client, "olivia")
    response = client.post("/login/code/", {"code": codes[0].upper(), "next": "/"}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "You signed in with a recovery code; 9 left" in response.text
    client.post("/logout/")

    password_sign_in(client, "olivia")
    response = client.post("/login/code/", {"code": codes[0], "next": "/"})
    assert response.status_code == 200 and "That code is not right" in response.text


def test_new_recovery_codes_replace_the_old_ones(client):
    make_operator("olivia", "owner")
    _, old = enrol(client, "olivia")

    response = client.post("/account/recovery-codes/")
    new = re.findall(r"<li><code>([a-z2-7]+)</code></li>", response.text)
    client.post("/logout/")
    password_sign_in(client, "olivia")

    assert len(new) == 10 and not set(new) & set(old)
    assert client.post("/login/code/", {"code": new[1]}).status_code == 302
    client.post("/logout/")
    password_sign_in(client, "olivia")
    assert "That code is not right" in client.post("/login/code/", {"code": old[1]}).text


def test_an_editor_needs_no_second_factor_unless_the_setting_requires_it_for_all(client, settings):
    make_operator("eddie", "editor")
    password_sign_in(client, "eddie")
    assert client.get("/").status_code == 200

    settings.TIDINGS_REQUIRE_2FA = "all"
    response = client.get("/")
    assert response.url == "/account/two-factor/?next=%2F"


def test_a_privacy_officer_must_enrol_like_an_owner(client):
    make_operator("priya", "privacy_officer")
    password_sign_in(client, "priya")

    assert client.get("/audience/suppression/").url.startswith("/account/two-factor/")


def test_an_editor_who_enrolled_of_their_own_accord_is_asked_for_a_code(client):
    make_operator("eddie", "editor")
    enrol(client, "eddie")
    client.post("/logout/")

    password_sign_in(client, "eddie")

    assert client.get("/").url == "/login/code/?next=%2F"


def test_the_admin_waits_for_the_second_factor_of_a_superuser(client, owner):
    client.force_login(owner)

    response = client.get("/admin/", follow=True)

    assert response.redirect_chain[-1][0].startswith("/account/two-factor/?next=")
    sign_in(client, owner)
    assert client.get("/admin/").status_code == 200


def test_the_code_page_sends_next_only_to_this_site(client):
    user = make_operator("olivia", "owner")
    device = sign_in(client, user, second_factor=True)
    client.post("/logout/")
    password_sign_in(client, "olivia")

    response = client.post(
        "/login/code/", {"code": code_for(device, 1), "next": "https://evil.example/"}
    )

    assert response.url == "/"


def test_sign_in_and_failures_are_in_the_audit_log_without_what_was_typed(client):
    make_operator("olivia", "owner")

    client.post("/login/", {"username": "olivia", "password": "wrong password"})
    client.post("/login/", {"username": "someone@example.org", "password": "guess"})
    password_sign_in(client, "olivia")

    entries = list(AuditEntry.objects.filter(action__startswith="operator.sign").order_by("pk"))
    assert [e.action for e in entries] == [
        "operator.sign_in_failed",
        "operator.sign_in_failed",
        "operator.signed_in",
    ]
    assert entries[0].object_id == _ids("olivia")[0] and entries[1].object_id == ""
    assert "someone@example.org" not in str([e.details for e in entries])


def test_the_session_gets_a_new_id_once_the_code_is_accepted(client):
    make_operator("olivia", "owner")
    device, _ = enrol(client, "olivia")
    client.post("/logout/")
    password_sign_in(client, "olivia")
    before = client.session.session_key

    client.post("/login/code/", {"code": code_for(device, 1), "next": "/"})

    assert client.session.session_key != before
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"]
)
def test_the_admins_sign_in_address_sends_a_superuser_only_to_this_site(client, owner, target):
    sign_in(client, owner)

    response = client.get("/admin/login/", {"next": target})

    assert response.status_code == 302
    assert response.url == "/admin/"
    assert client.get("/admin/login/", {"next": "/admin/auth/user/"}).url == "/admin/auth/user/"
