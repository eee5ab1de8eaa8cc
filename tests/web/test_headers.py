"""Security headers, cookies, no inline script anywhere, and signed links across a key rotation."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

import tidings
from tests.audience.public_helpers import (
    link_in,
    mails_to,
    make_form,
    make_list,
    reset,
    sign_up,
    use_outbox,
)
from tests.operators import OPERATOR_PASSWORD

SRC = Path(tidings.__file__).parent


def csp_of(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part
    }


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/", "/login/", "/privacy", "/audience/contacts/"])
def test_every_page_carries_a_content_security_policy_without_inline_script(owner_client, url):
    policy = csp_of(owner_client.get(url))

    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]


@pytest.mark.django_db
def test_operator_pages_may_not_be_kept_by_a_browser_or_proxy(owner_client, owner):
    # The token page shows a new API token once (and contact pages personal data): without
    # Cache-Control a shared computer's browser cache kept them after signing out.
    created = owner_client.post(
        "/settings/api/tokens/", {"name": "shop", "operator": owner.pk, "scopes": "read"}
    )
    assert "tid_" in created.text
    for response in (created, owner_client.get("/audience/contacts/"), owner_client.get("/")):
        assert "no-store" in response["Cache-Control"]
        assert "private" in response["Cache-Control"]


@pytest.mark.django_db
def test_pages_refuse_framing_sniffing_and_send_no_referrer_off_site(client):
    response = client.get("/login/")

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_no_template_has_an_inline_script_or_event_handler():
    offenders = []
    for template in SRC.rglob("templates/**/*.html"):
        text = template.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text, flags=re.I):
            if "src=" not in tag:
                offenders.append(f"{template.relative_to(SRC)}: {tag}")
        if re.search(r"<[^>]+\son[a-z]+\s*=", text, flags=re.I):
            offenders.append(f"{template.relative_to(SRC)}: an on...= event handler attribute")
        if "javascript:" in text.lower():
            offenders.append(f"{template.relative_to(SRC)}: a javascript: URL")

    assert offenders == [], (
        "The content security policy allows scripts only from static files: move these into "
        "src/tidings/web/static/ (or your app's static folder) and load them with <script src>"
    )


@pytest.mark.django_db
def test_the_session_cookie_is_http_only_and_same_site_lax(client, owner):
    client.post("/login/", {"username": "owner", "password": OPERATOR_PASSWORD})

    cookie = client.cookies["sessionid"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert client.cookies["csrftoken"]["samesite"] == "Lax"


@pytest.mark.django_db
def test_over_tls_the_cookie_is_secure_and_hsts_is_sent(client, owner, settings):
    settings.SESSION_COOKIE_SECURE = True
    settings.SECURE_HSTS_SECONDS = 31536000

    client.post("/login/", {"username": "owner", "password": OPERATOR_PASSWORD}, secure=True)
    response = client.get("/privacy", secure=True)

    assert client.cookies["sessionid"]["secure"] is True
    assert response["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/privacy").headers  # not over http


def settings_in_a_fresh_process(tmp_path, **env: str) -> dict:
    """Some settings, as a process started with ``env`` would have them."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k, None) for k in ("
        "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', "
        "'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE', "
        "'SECRET_KEY_FALLBACKS', 'TIDINGS_REQUIRE_2FA', 'AXES_FAILURE_LIMIT')}))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TIDINGS_", "DJANGO_"))}
    base.pop("DATABASE_URL", None)
    base.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "tidings.settings",
            "TIDINGS_DATA_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def test_served_over_https_cookies_are_secure_and_hsts_is_on(tmp_path):
    plain = settings_in_a_fresh_process(tmp_path)
    tls = settings_in_a_fresh_process(tmp_path, TIDINGS_BASE_URL="https://mail.example.com")

    assert plain["SESSION_COOKIE_SECURE"] is False and plain["SECURE_HSTS_SECONDS"] == 0
    assert tls["SESSION_COOKIE_SECURE"] is True and tls["CSRF_COOKIE_SECURE"] is True
    assert tls["SECURE_HSTS_SECONDS"] == 31536000
    assert tls["SESSION_COOKIE_HTTPONLY"] is True and tls["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert plain["TIDINGS_REQUIRE_2FA"] == "privileged" and plain["AXES_FAILURE_LIMIT"] == 5


def test_key_rotation_fallbacks_and_2fa_for_all_come_from_the_environment(tmp_path):
    got = settings_in_a_fresh_process(
        tmp_path,
        TIDINGS_SECRET_KEY_FALLBACKS="old-key-one, old-key-two",
        TIDINGS_REQUIRE_2FA_FOR_ALL="1",
        TIDINGS_LOCKOUT_FAILURES="3",
    )

    assert got["SECRET_KEY_FALLBACKS"] == ["old-key-one", "old-key-two"]
    assert got["TIDINGS_REQUIRE_2FA"] == "all"
    assert got["AXES_FAILURE_LIMIT"] == 3


# --- signed links survive a rotation of SECRET_KEY while the old key is a fallback -----------


@pytest.fixture
def links_signed_with_the_old_key(db, settings):
    reset()
    use_outbox(settings)
    settings.SECRET_KEY = "the-old-key-" + "o" * 40
    form = make_form([make_list()])
    sign_up(Client(), form, email="rotation@example.com")
    confirm = link_in(mails_to("rotation@example.com")[-1], "/c/")
    Client().post(confirm)
    welcome = mails_to("rotation@example.com")[-1]
    return {"confirm": confirm, "preferences": link_in(welcome, "/p/")}


@pytest.mark.parametrize("link", ["confirm", "preferences"])
def test_a_link_signed_before_the_key_rotation_works_while_the_old_key_is_a_fallback(
    links_signed_with_the_old_key, settings, link
):
    url = links_signed_with_the_old_key[link]
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "the-new-key-" + "n" * 40

    settings.SECRET_KEY_FALLBACKS = [old]
    with_fallback = Client().get(url)
    settings.SECRET_KEY_FALLBACKS = []
    without = Client().get(url)

    assert with_fallback.status_code == 200
    assert "This link does not work" not in with_fallback.text
    assert "This link does not work" in without.text
