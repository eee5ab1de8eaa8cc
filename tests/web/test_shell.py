"""The operator interface's shell: signing in and out, the layout, the dashboard, error pages."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

from tests.conftest import OPERATOR_PASSWORD
from tests.operators import make_operator
from tests.pages import other_scripts
from tidings.policy import get_policy

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(db):
    """An operator who is staff but not a superuser."""
    return make_operator("editor", "editor")


@pytest.fixture
def stranger(db):
    """Someone with an account who is not an operator."""
    return get_user_model().objects.create_user(
        "stranger", "stranger@example.org", OPERATOR_PASSWORD
    )


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_a_signed_out_visitor_is_sent_from_the_dashboard_to_sign_in_and_back(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response.url == "/login/?next=/"


def test_the_sign_in_page_carries_next_through_the_form(client):
    response = client.get("/login/?next=/privacy")

    assert response.status_code == 200
    assert '<input type="hidden" name="next" value="/privacy">' in response.text
    assert '<label for="id_username">' in response.text
    assert '<label for="id_password">' in response.text


def test_a_wrong_password_is_refused_with_an_error_and_nobody_is_signed_in(client, owner):
    response = client.post("/login/", {"username": "owner", "password": "not the password"})

    assert response.status_code == 200
    assert 'role="alert"' in response.text
    assert "Please enter a correct username and password" in response.text
    assert not is_signed_in(client)


def test_the_right_password_lands_on_the_dashboard_with_the_policy_summary(client, owner):
    response = client.post(
        "/login/", {"username": "owner", "password": OPERATOR_PASSWORD}, follow=True
    )

    policy = get_policy()
    assert response.redirect_chain == [("/", 302)]
    assert "<h1>Dashboard</h1>" in response.text
    assert policy.controller.name in response.text
    assert f'<p class="card-value">{len(policy.purposes)}</p>' in response.text
    assert f'<p class="card-value">{len(policy.processors)}</p>' in response.text
    assert f'<p class="card-value">{len(policy.retention)}</p>' in response.text
    assert policy.version in response.text
    assert f">{policy.sha256[:12]}</code>" in response.text


def test_signing_in_returns_to_the_page_named_in_next(client, owner):
    response = client.post(
        "/login/?next=/privacy",
        {"username": "owner", "password": OPERATOR_PASSWORD, "next": "/privacy"},
    )

    assert response.status_code == 302
    assert response.url == "/privacy"


def test_signing_in_never_redirects_to_another_site(client, owner):
    response = client.post(
        "/login/",
        {"username": "owner", "password": OPERATOR_PASSWORD, "next": "https://evil.example/"},
    )

    assert response.url == reverse("web:dashboard")


def test_signing_out_with_a_post_ends_the_session(owner_client):
    response = owner_client.post("/logout/")

    assert response.status_code == 302
    assert response.url == "/login/"
    assert not is_signed_in(owner_client)
    assert owner_client.get("/").status_code == 302


def test_a_get_to_logout_does_not_sign_anyone_out(owner_client):
    response = owner_client.get("/logout/")

    assert response.status_code == 405
    assert is_signed_in(owner_client)


def test_the_sign_out_button_is_a_form_with_a_csrf_token(owner_client):
    text = owner_client.get("/").text

    assert '<form class="sign-out" method="post" action="/logout/">' in text
    assert 'name="csrfmiddlewaretoken"' in text


def test_a_signed_in_user_who_is_not_staff_is_refused_the_dashboard(client, stranger):
    client.force_login(stranger)

    response = client.get("/")

    assert response.status_code == 403
    assert "Access refused" in response.text
    assert 'class="site-nav"' not in response.text


def test_the_admin_is_open_to_a_superuser_and_carries_the_product_name(owner_client):
    response = owner_client.get("/admin/")

    assert response.status_code == 200
    assert "<title>Administration | tidings</title>" in response.text
    assert '<div id="site-name"><a href="/admin/">tidings</a></div>' in response.text


def test_the_admin_refuses_a_user_who_is_not_staff(client, stranger):
    client.force_login(stranger)

    response = client.get("/admin/")

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_the_navigation_offers_the_admin_only_to_superusers(client, owner, editor):
    client.force_login(editor)
    editor_page = client.get("/").text
    client.force_login(owner)
    owner_page = client.get("/").text

    assert 'aria-label="Main"' in editor_page
    assert 'href="/admin/"' not in editor_page
    assert 'href="/admin/"' in owner_page


def test_the_navigation_marks_the_current_page(owner_client):
    text = owner_client.get("/").text

    assert '<a href="/" aria-current="page">Dashboard</a>' in text


def test_public_pages_show_no_operator_navigation(client):
    text = client.get("/privacy").text

    assert 'class="site-nav"' not in text
    assert "Sign out" not in text


def test_every_page_has_the_layout_landmarks_and_a_footer_naming_the_controller(owner_client):
    controller = get_policy().controller.name

    for url in ("/", "/login/", "/privacy"):
        text = owner_client.get(url).text
        assert '<html lang="en">' in text, url
        assert '<a class="skip-link" href="#main">' in text, url
        assert '<main id="main"' in text, url
        assert '<div class="messages" role="status">' in text, url
        assert f"{controller} · " in text, url
        assert '<a href="/privacy">Privacy notice</a>' in text, url


def test_no_page_of_the_shell_contains_a_script(owner_client, client):
    """A content security policy forbids inline scripts; the shell needs none (the menus' own
    nav.js comes from our origin, and the menus work without it)."""
    pages = [owner_client.get(url).text for url in ("/", "/privacy", "/no-such-page")]
    pages.append(client.get("/login/").text)

    assert not any(other_scripts(page) for page in pages)


def test_a_missing_page_gets_the_404_page_in_the_layout(client):
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in response.text
    assert '<a class="skip-link" href="#main">' in response.text
    assert get_policy().controller.name in response.text


def test_a_form_posted_without_its_csrf_token_gets_the_403_page_in_the_layout(owner):
    client = Client(enforce_csrf_checks=True)

    response = client.post("/login/", {"username": "owner", "password": OPERATOR_PASSWORD})

    assert response.status_code == 403
    assert "Your form could not be accepted" in response.text
    assert '<main id="main"' in response.text


def test_the_500_page_renders_without_a_request_context():
    response = server_error(RequestFactory().get("/"))

    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in response.content.decode()


def test_the_stylesheet_is_served(client):
    response = client.get("/static/tidings/tidings.css")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert b".card" in b"".join(response.streaming_content)


def test_every_message_level_has_a_colour_of_its_own():
    """A warning (a paused journey, a confirmation outstanding) must not look like a success:
    each level Django's messages framework uses, and the pages' own message-warning boxes, has
    its own rule, and warning and error do not fall back to the success background."""
    from pathlib import Path

    import tidings

    css = (Path(tidings.__file__).parent / "web/static/tidings/tidings.css").read_text()
    rules = {
        level: css.split(f".message-{level} {{", 1)[1].split("}", 1)[0]
        for level in ("warning", "error")
        if f".message-{level} {{" in css
    }
    assert set(rules) == {"warning", "error"}
    for level, rule in rules.items():
        assert "background:" in rule and "--ok-bg" not in rule, level
    assert "--warn-bg:" in css.split("@media (prefers-color-scheme: dark)", 1)[1]
