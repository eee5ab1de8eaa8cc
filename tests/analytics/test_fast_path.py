"""Page views reach their view without the middleware stack, and lose nothing by it."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model

from tidings.analytics.consent import banner_config
from tidings.analytics.models import PageView
from tidings.policy import get_policy
from tidings.wsgi import application

from .conftest import CHROME_UA

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _setup(ingest_now, fresh_salt):
    pass


def call(path="/a/collect", method="POST", host="127.0.0.1", cookie="", consent=True):
    version = banner_config(get_policy(), "")["version"][:12]  # the banner now shown
    body = json.dumps(
        {
            "u": "https://www.example.co.uk/docs",
            "r": "",
            "c": f"{version}|analytics=1" if consent else "",
        }
    ).encode()
    environ = {
        "PATH_INFO": path,
        "REQUEST_METHOD": method,
        "SERVER_NAME": host,
        "SERVER_PORT": "8000",
        "HTTP_HOST": host,
        "HTTP_USER_AGENT": CHROME_UA,
        "HTTP_COOKIE": cookie,
        "REMOTE_ADDR": "203.0.113.5",
        "CONTENT_TYPE": "text/plain;charset=UTF-8",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    chunks = application(environ, start_response)
    content = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return answer["status"], answer["headers"], content


def test_a_page_view_is_counted_through_the_production_application(ingest_now):
    status, headers, _ = call()
    assert status == "204 No Content"
    assert headers["Cache-Control"] == "max-age=0, no-store"
    assert "Set-Cookie" not in headers
    ingest_now()
    assert PageView.objects.get().path == "/docs"


def test_the_fast_path_still_refuses_an_unknown_host(ingest_now):
    status, _, _ = call(host="attacker.example")
    assert status.startswith("400")
    ingest_now()
    assert not PageView.objects.exists()


def test_a_signed_in_operator_takes_the_normal_path_and_is_not_counted(client, ingest_now):
    operator = get_user_model().objects.create_user("ops", password="x" * 12, is_staff=True)
    client.force_login(operator)
    session = client.cookies["sessionid"].value
    status, _, _ = call(cookie=f"sessionid={session}")
    assert status == "204 No Content"
    ingest_now()
    assert not PageView.objects.exists()


def test_other_requests_take_the_normal_path(ingest_now):
    status, headers, _ = call(path="/a/collect", method="GET")
    assert status.startswith("405")
    status, headers, _ = call(path="/privacy", method="GET")
    assert status == "200 OK"
    assert headers["X-Frame-Options"] == "DENY"  # the middlewares ran


def test_a_malformed_body_gets_the_same_problem_as_through_the_view(ingest_now):
    import tidings.analytics.fastpath as fastpath

    environ_body = b"not json"
    status, headers, content = _raw(environ_body)
    assert status.startswith("400")
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(content)["detail"] == "expected a JSON body"
    assert fastpath.PATH == "/a/collect"


def _raw(body: bytes):
    environ = {
        "PATH_INFO": "/a/collect",
        "REQUEST_METHOD": "POST",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1:8000",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)

    content = b"".join(application(environ, start_response))
    return answer["status"], answer["headers"], content
