"""Helpers for the tests of the public pages: sign-up, confirmation, preferences, unsubscribe.

Plain functions rather than fixtures, so the test modules stay independent of one another.
"""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.test import Client

import tidings.policy
from tidings.audience.actions import do_create_signup_form
from tidings.audience.consent import CHANNEL_EMAIL, PURPOSE_TRACKING
from tidings.audience.consent_records import record_consent
from tidings.audience.models import ConsentEvent, MailingList, SignupForm
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.models import OutboxMessage

EXAMPLE_POLICY = Path(tidings.policy.__file__).parent / "example.toml"
NEWSLETTER_COLLECTS = (
    'collects = { required = ["name", "email"], optional = ["phone", "company", "job_title"] }'
)

_ips = itertools.count(1)


def reset() -> None:
    """Forget rate-limit counters (a changed TIDINGS_POLICY is loaded afresh by itself)."""
    cache.clear()


def use_outbox(settings_fixture) -> None:
    """Send through the embedded outbox (the installation's default transport), not the locmem
    backend the test runner puts in its place, so tests read messages as an operator would."""
    settings_fixture.MAILERS = {
        "default": {"BACKEND": "tidings.campaigns.transports.outbox.EmailBackend"}
    }
    settings_fixture.TIDINGS_SMTP_URL = "outbox://"
    settings_fixture.TIDINGS_TRANSPORTS = None


def sent_mail() -> list[OutboxMessage]:
    """Deliver what the actions queued (one pass of the delivery engine, as a worker would),
    then the outbox's messages, oldest first."""
    deliver_pending(max_seconds=10)
    return list(OutboxMessage.objects.order_by("pk"))


def write_policy(tmp_path: Path, settings_fixture, *replacements: tuple[str, str]) -> Path:
    """A copy of the example policy with some text replaced, made the installation's policy;
    each text replaced must stand in the policy exactly once."""
    text = EXAMPLE_POLICY.read_text(encoding="utf-8")
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    settings_fixture.TIDINGS_POLICY = path
    return path


def make_list(name: str = "Product news", topic: str = "product news", **extra) -> MailingList:
    return MailingList.objects.create(name=name, topic=topic, **extra)


def make_form(lists, slug: str = "news", **values) -> SignupForm:
    values.setdefault("name", "Our newsletter")
    return do_create_signup_form(lists=lists, slug=slug, **values)


def next_ip() -> str:
    """A different visitor address per call, so tests stay clear of the rate limit."""
    n = next(_ips)
    return f"198.51.100.{n % 250 + 1}" if n < 250 else f"203.0.113.{n % 250 + 1}"


def sign_up(
    client: Client,
    form: SignupForm,
    email: str = "ada@example.com",
    name: str = "Ada Lovelace",
    lists=None,
    ip: str | None = None,
    follow: bool = False,
    **extra,
):
    """POST the hosted form, ticking ``lists`` (default: all of the form's lists); with
    ``follow``, the answer is the page the redirect leads to."""
    data = {"email": email, "name": name, **extra}
    for ml in form.lists.all() if lists is None else lists:
        data[f"list_{ml.pk}"] = "on"
    return client.post(f"/f/{form.slug}", data, REMOTE_ADDR=ip or next_ip(), follow=follow)


def mails_to(email: str) -> list[OutboxMessage]:
    """Messages delivered to ``email`` (see ``sent_mail``), oldest first."""
    return [m for m in sent_mail() if email in m.to.split("\n")]


def link_in(message: OutboxMessage, prefix: str) -> str:
    """The path of the first link in the plain-text body that starts with ``prefix`` (/c/...)."""
    base = settings.TIDINGS_BASE_URL
    match = re.search(re.escape(base + prefix) + r"\S+", message.body("plain"))
    assert match, f"no {prefix} link in: {message.body('plain')}"
    return match.group(0)[len(base) :]


class PageAudit(HTMLParser):
    """What a test needs to know about a page's HTML: scripts, headings, inputs and labels."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.handlers: list[str] = []
        self.h1 = 0
        self.lang = None
        self.inputs: list[dict[str, str]] = []
        self.label_for: set[str] = set()
        self.open_labels = 0

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        self.handlers += [k for k in attrs if k.startswith("on")]
        if tag == "html":
            self.lang = attrs.get("lang")
        elif tag == "script":
            self.scripts += 1
        elif tag == "h1":
            self.h1 += 1
        elif tag == "label":
            self.open_labels += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        elif tag in {"input", "select", "textarea"}:
            attrs["_wrapped"] = "yes" if self.open_labels else ""
            attrs["_tag"] = tag
            self.inputs.append(attrs)

    def handle_endtag(self, tag):
        if tag == "label":
            self.open_labels -= 1

    def unlabelled(self) -> list[str]:
        """Names of visible inputs without a label."""
        return [
            i.get("name", "?")
            for i in self.inputs
            if i.get("type") not in {"hidden", "submit", "button"}
            and not i["_wrapped"]
            and i.get("id") not in self.label_for
        ]


def audit_page(html: str) -> PageAudit:
    page = PageAudit()
    page.feed(html)
    return page


def refuse_tracking(contact) -> None:
    """The person unticks "Allow open and click statistics" (what the preference page records)."""
    record_consent(
        contact,
        purpose=PURPOSE_TRACKING,
        channel=CHANNEL_EMAIL,
        action=ConsentEvent.Action.WITHDRAWN,
        source=ConsentEvent.Source.PREFERENCES,
    )
