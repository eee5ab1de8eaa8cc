"""The policy's cookies section: validated like the rest of the file, listed on /privacy."""

from __future__ import annotations

import html

import pytest

from tidings.policy import PolicyError, parse_policy

from .conftest import ANALYTICS_WITHOUT_CONSENT, EXAMPLE_TEXT, replace_once

MARKETING_COOKIE = """
[[cookies]]
name = "_ads"
purpose = "measures which adverts brought you here"
party = "third"
provider = "Ad Network Ltd"
duration = "90 days"
strictly_necessary = false
consent_purpose = "analytics"
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "policy.toml")
    return caught.value.lines()


def test_the_example_lists_the_banners_own_cookie_as_strictly_necessary():
    policy = parse_policy(EXAMPLE_TEXT)
    (cookie,) = policy.cookies
    assert cookie.name == "tidings_consent"
    assert cookie.strictly_necessary
    assert cookie.party == "first"
    assert str(cookie.lifetime) == "12 months"


def test_the_banner_asks_only_about_consent_based_website_purposes():
    assert parse_policy(EXAMPLE_TEXT).consent_purposes_on_website() == ["analytics"]
    # Statistics on legitimate interests: the banner has nothing to ask.
    assert parse_policy(ANALYTICS_WITHOUT_CONSENT).consent_purposes_on_website() == []


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        (
            MARKETING_COOKIE.replace('duration = "90 days"', 'duration = "forever"'),
            'policy.toml: cookies[1].duration: "forever" is not a cookie lifetime',
        ),
        (
            MARKETING_COOKIE.replace('party = "third"', 'party = "fourth"'),
            "policy.toml: cookies[1].party: input should be 'first' or 'third', got \"fourth\"",
        ),
        (
            MARKETING_COOKIE.replace('consent_purpose = "analytics"', ""),
            "policy.toml: cookies[1].consent_purpose: a cookie that is not strictly necessary "
            "needs consent",
        ),
        (
            MARKETING_COOKIE.replace('"analytics"', '"enquiry"'),
            'policy.toml: cookies[1].consent_purpose: purpose "enquiry" is not consent-based',
        ),
        (
            MARKETING_COOKIE.replace('"analytics"', '"telepathy"'),
            'policy.toml: cookies[1].consent_purpose: unknown purpose "telepathy"',
        ),
        (
            MARKETING_COOKIE.replace('provider = "Ad Network Ltd"\n', ""),
            "policy.toml: cookies[1].provider: a third-party cookie must say who sets it",
        ),
        (
            MARKETING_COOKIE.replace('name = "_ads"', 'name = "my cookie"'),
            'policy.toml: cookies[1].name: "my cookie" is not a cookie name',
        ),
        (
            MARKETING_COOKIE.replace('name = "_ads"', 'name = "tidings_consent"'),
            'policy.toml: cookies[1].name: cookie "tidings_consent" is listed twice',
        ),
        (
            MARKETING_COOKIE.replace("strictly_necessary = false", "strictly_necessary = true"),
            "policy.toml: cookies[1].consent_purpose: a strictly necessary cookie needs no consent",
        ),
        (
            MARKETING_COOKIE.replace("strictly_necessary = false\n", ""),
            'policy.toml: cookies[1]: missing key "strictly_necessary"',
        ),
    ],
)
def test_a_broken_cookie_names_the_file_the_key_and_the_problem(cookie, expected):
    problems = problems_of(EXAMPLE_TEXT + cookie)
    assert any(line.startswith(expected) for line in problems), problems


def test_a_policy_whose_banner_has_questions_must_list_the_consent_cookie():
    without = replace_once(EXAMPLE_TEXT, 'name = "tidings_consent"', 'name = "other_cookie"')
    assert any(
        line.startswith(
            "policy.toml: cookies: the consent banner keeps the visitor's choice in "
            'the "tidings_consent" cookie'
        )
        for line in problems_of(without)
    )


@pytest.mark.django_db  # the notice reads where data came from in the records (imports)
def test_the_privacy_notice_lists_every_cookie(client, use_policy):
    use_policy(EXAMPLE_TEXT + MARKETING_COOKIE)

    page = html.unescape(client.get("/privacy").content.decode())

    assert "<caption>Cookies on our website</caption>" in page
    assert (
        '<th scope="row"><code>tidings_consent</code></th><td>Remembers your cookie choices, so we '
        "do not ask again on every page.</td><td>First party (us)</td><td>12 months</td>"
        "<td>No: strictly necessary</td>"
    ) in page
    assert (
        '<th scope="row"><code>_ads</code></th><td>Measures which adverts brought you here.</td>'
        "<td>Third party (Ad Network Ltd)</td><td>90 days</td>"
        '<td>Yes: <a href="#purpose-analytics">Understanding how visitors use our website</a></td>'
    ) in page


@pytest.mark.django_db  # as above
def test_the_privacy_notice_says_truly_what_links_visits(client):
    """The notice said visits "cannot be linked to you or to each other": the visits of one
    day do share the visitor hash (that is how visitors are counted); only days are unlinked."""
    page = html.unescape(client.get("/privacy").content.decode())

    assert "to each other" not in page
    assert (
        "the visits of one day share a code made with a random key that we delete when the day "
        "is over, so a visit cannot be linked to a visit on another day."
    ) in page


@pytest.mark.django_db  # as above
def test_the_privacy_json_carries_the_cookies(client):
    data = client.get("/privacy.json").json()
    assert data["cookies"][0]["name"] == "tidings_consent"
    assert data["cookies"][0]["strictly_necessary"] is True
