"""The cookie banner's configuration (from the policy), its cookie, and the proof of each choice.

The banner asks only about the purposes that need consent on the website
(``Policy.consent_purposes_on_website``).  The visitor's answer lives in one strictly necessary,
first-party cookie, ``tidings_consent``, written by banner.js as::

    <first 12 hex digits of the banner version>|analytics=1|ads=0

and every answer is also posted to ``/a/consent``, which keeps an anonymous ``ConsentRecord``
(what was chosen, with which banner, when: no IP address, no id, not the cookie).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from django.db import transaction
from django.urls import reverse

from tidings.policy import Policy
from tidings.policy.schema import CONSENT_COOKIE

from .models import BannerText, ConsentRecord

COOKIE_DAYS_DEFAULT = 365


VERSION_PREFIX = 12  # hex digits of the banner version the cookie starts with


def parse_consent(value: str | None, version: str | None = None) -> dict[str, bool]:
    """The choices in a consent cookie's value ({} for none or a malformed one).  With
    ``version`` (the current banner's), an answer to another banner is no answer: the policy
    changed what the banner says, so the visitor is asked again (as banner.js does)."""
    if not value:
        return {}
    value = unquote(value)  # a browser or proxy may have percent-encoded it
    parts = value.split("|")
    if version is not None and parts[0] != version[:VERSION_PREFIX]:
        return {}
    choice: dict[str, bool] = {}
    for part in parts[1:]:
        key, sep, flag = part.partition("=")
        if sep and key and flag in {"0", "1"}:
            choice[key] = flag == "1"
    return choice


def _cookie_days(policy: Policy) -> int:
    cookie = policy.cookie(CONSENT_COOKIE)
    lifetime = cookie.lifetime if cookie else None
    if lifetime is None:
        return COOKIE_DAYS_DEFAULT if cookie is None else 0
    per_unit = {"days": 1, "weeks": 7, "months": 30, "years": 365}
    return lifetime.amount * per_unit[lifetime.unit]


def banner_texts(policy: Policy) -> dict[str, Any]:
    """What the banner says: generic wording around the policy's own facts."""
    name = policy.controller.name
    purposes = []
    for key in policy.consent_purposes_on_website():
        purpose = policy.purposes[key]
        cookies = [c.name for c in policy.cookies if c.consent_purpose == key]
        if purpose.record == "page_view" and not purpose.identifying:
            detail = (
                "We count visits to our pages without cookies and without storing your IP "
                "address or anything else that identifies you."
            )
        else:
            detail = purpose.description or ""
        if cookies:
            detail = f"{detail} Cookies: {', '.join(cookies)}.".strip()
        purposes.append({"key": key, "title": purpose.title, "detail": detail})
    return {
        "title": "Your choice about cookies and statistics",
        "body": (
            f"{name} would like your permission for the uses below. Nothing is recorded for them "
            "unless you agree, and you can change your mind at any time with the "
            "“Cookie settings” link."
        ),
        "accept": "Accept all",
        "reject": "Reject all",
        "choose": "Choose",
        "save": "Save my choices",
        "close": "Close",
        "settings": "Cookie settings",
        "saved": "Your choice is saved.",
        "privacy": "Privacy notice",
        "purposes": purposes,
    }


def banner_version(texts: dict[str, Any]) -> str:
    """SHA-256 of the texts the visitor saw: a consent record says which banner it answered."""
    return hashlib.sha256(json.dumps(texts, sort_keys=True).encode("utf-8")).hexdigest()


def banner_config(policy: Policy, base_url: str) -> dict[str, Any]:
    """The JSON banner.js loads (``/a/banner.json``)."""
    texts = banner_texts(policy)
    return {
        "version": banner_version(texts),
        "texts": texts,
        "purposes": [p["key"] for p in texts["purposes"]],
        # Purposes of the website that need no consent (statistics on legitimate interests):
        # ``allowed()`` says yes to these without asking.
        "not_needed": [
            key
            for key, p in policy.purposes.items()
            if p.record == "page_view" and p.lawful_basis != "consent"
        ],
        "cookie": {"name": CONSENT_COOKIE, "days": _cookie_days(policy)},
        "consent_url": base_url + reverse("analytics_public:consent"),
        "privacy_url": base_url + reverse("policy:notice"),
    }


class InvalidConsent(ValueError):
    pass


def remember_banner(version: str, texts: dict[str, Any], at: datetime) -> None:
    """Keep the words of a banner version the first time it is shown (or answered): one look-up
    by primary key, and one insert per version ever."""
    BannerText.objects.get_or_create(
        version=version, defaults={"texts": texts, "first_shown_at": at}
    )


def require_shown_banner(policy: Policy, version: str, at: datetime) -> None:
    """An answer must name a banner that was shown: the current one, or one whose words are
    kept (a page may still show the banner of the policy before the last change)."""
    texts = banner_texts(policy)
    if version == banner_version(texts):
        remember_banner(version, texts, at)
    elif not BannerText.objects.filter(version=version).exists():
        raise InvalidConsent("version: not a version of the banner this site has shown")


def clean_choice(policy: Policy, data: Any) -> tuple[str, dict[str, bool], str]:
    """(version, choice, how) from a posted consent record, or InvalidConsent saying why."""
    if not isinstance(data, dict):
        raise InvalidConsent("expected a JSON object")
    version = data.get("version")
    choice = data.get("choice")
    if not isinstance(version, str) or len(version) != 64 or version.strip("0123456789abcdef"):
        raise InvalidConsent("version: expected the banner's 64-digit version")
    asked = policy.consent_purposes_on_website()
    if not isinstance(choice, dict) or set(choice) != set(asked):
        raise InvalidConsent(f"choice: expected a yes/no answer for each of {', '.join(asked)}")
    if not all(isinstance(v, bool) for v in choice.values()):
        raise InvalidConsent("choice: answers must be true or false")
    values = set(choice.values())
    how = "accept" if values == {True} else "reject" if values == {False} else "choose"
    return version, {key: choice[key] for key in asked}, how


@transaction.atomic
def do_record_consent(
    version: str, choice: dict[str, bool], how: str, at: datetime
) -> ConsentRecord:
    """Keep the anonymous proof of one banner answer.  It holds no person, so there is no audit
    entry (one per visitor's click would drown the log); the records are the proof."""
    return ConsentRecord.objects.create(at=at, banner_version=version, choice=choice, how=how)
