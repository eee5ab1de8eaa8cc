"""The demo installation: an operator, a list per marketing topic, and a few fictional people."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from tidings.audience.actions import do_create_contact, do_subscribe
from tidings.audience.models import MailingList
from tidings.policy import get_policy

DEMO_USERNAME = "operator"
DEMO_WORDING = (
    "Yes, email me {topic} from {controller}. I can unsubscribe at any time with one click; "
    "see the privacy notice."
)
# Fictional people at reserved example domains (RFC 2606): nobody real is ever mailed.
PEOPLE = [
    ("Ada Lovelace", "Analytical Engines Ltd", "Head of Research"),
    ("Grace Hopper", "Compiler Works", "Director"),
    ("Alan Turing", "Bletchley Systems", "Principal Engineer"),
    ("Katherine Johnson", "Orbital Analytics", "Lead Analyst"),
    ("Tim Berners-Lee", "Hypertext Partners", "CTO"),
    ("Margaret Hamilton", "Apollo Software", "Software Lead"),
    ("Edsger Dijkstra", "Shortest Path BV", "Consultant"),
    ("Barbara Liskov", "Substitution Inc", "Architect"),
    ("Donald Knuth", "Literate Programs", "Author"),
    ("Frances Allen", "Optimising Compilers", "Fellow"),
    ("Sophie Wilson", "Acorn Designs", "Chip Designer"),
    ("Karen Spärck Jones", "Inverse Documents", "Researcher"),
]


@dataclass
class DemoResult:
    username: str
    password: str
    lists: int
    contacts: int


@transaction.atomic
def load_demo() -> DemoResult:
    """Create (or refresh) the demo data.  Running it again adds nothing twice."""
    policy = get_policy()
    user_model = get_user_model()
    password = secrets.token_urlsafe(12)
    user, _ = user_model.objects.get_or_create(
        username=DEMO_USERNAME, defaults={"email": "operator@example.com"}
    )
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()

    lists = []
    for topic in policy.marketing.topics:
        mailing_list, _ = MailingList.objects.get_or_create(
            name=topic.capitalize(),
            defaults={
                "topic": topic,
                "description": f"{topic.capitalize()} from {policy.controller.name}.",
            },
        )
        lists.append(mailing_list)

    allowed = set(policy.fields_for("newsletter").all)
    for i, (name, company, job_title) in enumerate(PEOPLE):
        local = name.lower().replace(" ", ".").replace("ä", "a")
        values = {
            "name": name,
            "email": f"{local}@example.com",
            "company": company,
            "job_title": job_title,
        }
        contact, created = do_create_contact(
            {k: v for k, v in values.items() if k in allowed}, purpose="newsletter"
        )
        if not created:
            continue
        for mailing_list in lists[: 1 + i % len(lists)]:
            do_subscribe(
                contact,
                mailing_list,
                source="import",
                source_ref="demo",
                wording_text=DEMO_WORDING.format(
                    topic=mailing_list.topic, controller=policy.controller.name
                ),
                confirmed=i % 5 != 4,  # a few stay pending, as if they had not confirmed yet
            )
    if lists:  # a policy without marketing topics has no list to sign up to
        _demo_newsletter(lists[0], user)
    _demo_booking(user)
    _demo_block_template(user)
    return DemoResult(DEMO_USERNAME, password, len(lists), len(PEOPLE))


DEMO_BODY = """# Hello {{ contact.first_name or "there" }},

This month at {{ controller.name }}:

- **Release 4.2** is out, with faster exports and a new API.
- Join our **webinar** on data protection for small teams.

[Read the release notes](https://www.example.co.uk/news)

Thanks for reading!
"""


# The demo's From when none is configured: what ``make demo`` gives it (DEMO_FROM_EMAIL in the
# Makefile), so ``tidings demo`` run by hand mails from the same address, never the undeliverable
# production default (newsletter@localhost).
DEMO_FROM_EMAIL = "newsletter@example.co.uk"
_PRODUCTION_DEFAULT = "newsletter@localhost"


def demo_sender_address() -> str:
    """The demo campaign's sender: the address the demo's own mail comes from
    (``TIDINGS_FROM_EMAIL``, which ``make demo`` sets to DEMO_FROM_EMAIL), so a campaign and a
    confirmation come from one address; DEMO_FROM_EMAIL when none with a real domain is set."""
    from email.utils import parseaddr

    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    domain = address.rpartition("@")[2]
    return address.lower() if "." in domain.strip(".") else DEMO_FROM_EMAIL


def follow_demo_from() -> str:
    """``tidings demo`` run by hand, without ``TIDINGS_FROM_EMAIL``: the demo's mail comes from
    DEMO_FROM_EMAIL, as under ``make demo`` (this process's settings and environment, as
    ``follow_serving_address`` does for links).  An address set by the tester is left alone.
    Returns the From in effect."""
    import os

    if os.environ.get("TIDINGS_FROM_EMAIL"):
        return settings.DEFAULT_FROM_EMAIL
    if settings.DEFAULT_FROM_EMAIL == _PRODUCTION_DEFAULT:
        os.environ["TIDINGS_FROM_EMAIL"] = DEMO_FROM_EMAIL
        settings.DEFAULT_FROM_EMAIL = settings.SERVER_EMAIL = DEMO_FROM_EMAIL
    return settings.DEFAULT_FROM_EMAIL


def _demo_newsletter(first_list: MailingList, user) -> None:
    """A sign-up form, a verified sender, the default layout, a template and a draft campaign."""
    from tidings.audience.actions import do_create_signup_form
    from tidings.audience.models import SignupForm
    from tidings.campaigns.lifecycle import do_create_campaign
    from tidings.campaigns.models import Campaign, Sender, Template
    from tidings.campaigns.rendering import ensure_default_layout

    if not SignupForm.objects.filter(slug="newsletter").exists():
        offered = get_policy().fields_for("newsletter").optional
        do_create_signup_form(
            actor=user,
            lists=[first_list],
            name="Newsletter sign-up",
            slug="newsletter",
            # the company when the installation's policy lets the newsletter ask for it
            optional_fields=[field for field in ("company",) if field in offered],
            is_active=True,
        )
    sender, _ = Sender.objects.get_or_create(
        email=demo_sender_address(),
        # example.com cannot pass the domain checks: the demo's owner vouches for it.
        defaults={"name": get_policy().controller.name, "verified": True, "verified_by": "owner"},
    )
    template, _ = Template.objects.get_or_create(
        name="Monthly newsletter",
        defaults={
            "layout": ensure_default_layout(),
            "format": "markdown",
            "subject": "News from {{ controller.name }}",
            "body": DEMO_BODY,
        },
    )
    if not Campaign.objects.exists():
        do_create_campaign(
            template,
            name="November newsletter",
            topic=first_list.topic,
            actor=user,
            sender=sender,
            lists=[first_list],
        )


# --- where the demo (and any `tidings serve` without TIDINGS_BASE_URL) is reached --------------
def serving_base_url(host: str, port: int) -> str:
    """The address of a server listening on ``host``:``port``, for links (an unspecified bind
    address, 0.0.0.0 or ::, is reached on this machine at 127.0.0.1)."""
    shown = "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host  # noqa: S104 - a bind address
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def follow_serving_address(host: str, port: int) -> str:
    """Make links point where we serve, unless TIDINGS_BASE_URL says where we are reached.

    Without this, ``make demo PORT=8123`` printed and mailed links to port 8000 (the default
    base URL).  The address goes into this process's settings (the web workers granian forks
    inherit them) and into the environment (``tidings worker``, started alongside, sends the
    mail and reads it from there).  Returns the base URL in effect.
    """
    import os
    from urllib.parse import urlsplit

    if os.environ.get("TIDINGS_BASE_URL"):
        return settings.TIDINGS_BASE_URL
    url = serving_base_url(host, port)
    os.environ["TIDINGS_BASE_URL"] = url
    settings.TIDINGS_BASE_URL = url
    parts = urlsplit(url)
    if parts.hostname not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, parts.hostname]
    origin = f"{parts.scheme}://{parts.netloc}"
    if origin not in settings.CSRF_TRUSTED_ORIGINS:
        settings.CSRF_TRUSTED_ORIGINS = [*settings.CSRF_TRUSTED_ORIGINS, origin]
    return url


def _demo_booking(user) -> None:
    """Demo booking works out of the box: the demo operator gives demos, in the default hours
    (Monday to Friday, 09:00-12:30 and 13:30-17:00, 45 minutes, up to 30 days ahead), so
    /demo/ offers times at once.  A demo that already has hosts is left as it is."""
    from tidings.booking.actions import do_set_demo_hosts
    from tidings.booking.models import Availability, DemoHost

    Availability.current()
    if not DemoHost.objects.filter(is_active=True).exists():
        do_set_demo_hosts([user], actor=user)


def _demo_block_template(user) -> None:
    """The newsletter starter of the block editor, to open in the editor straight away."""
    from tidings.campaigns.blocks.starters import STARTERS
    from tidings.campaigns.models import Template
    from tidings.campaigns.rendering import ensure_default_layout

    starter = STARTERS["newsletter"]
    Template.objects.get_or_create(
        name="Newsletter (blocks)",
        defaults={
            "layout": ensure_default_layout(),
            "format": "blocks",
            "subject": starter.subject,
            "body": starter.body(),
            "created_by": user,
        },
    )
