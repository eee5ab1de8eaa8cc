"""The demo installation: an operator, a list per marketing topic, and a few fictional people."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

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
    _demo_newsletter(lists[0], user)
    return DemoResult(DEMO_USERNAME, password, len(lists), len(PEOPLE))


DEMO_BODY = """# Hello {{ contact.first_name | default("there") }},

This month at {{ controller.name }}:

- **Release 4.2** is out, with faster exports and a new API.
- Join our **webinar** on data protection for small teams.

[Read the release notes](https://www.example.co.uk/news)

Thanks for reading!
"""


def _demo_newsletter(first_list: MailingList, user) -> None:
    """A sign-up form, a verified sender, the default layout, a template and a draft campaign."""
    from tidings.audience.actions import do_create_signup_form
    from tidings.audience.models import SignupForm
    from tidings.campaigns.lifecycle import do_create_campaign
    from tidings.campaigns.models import Campaign, Sender, Template
    from tidings.campaigns.rendering import ensure_default_layout

    if not SignupForm.objects.filter(slug="newsletter").exists():
        do_create_signup_form(
            actor=user,
            lists=[first_list],
            name="Newsletter sign-up",
            slug="newsletter",
            optional_fields=["company"],
            is_active=True,
        )
    sender, _ = Sender.objects.get_or_create(
        email="newsletter@example.com",
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
