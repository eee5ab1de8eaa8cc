"""The getting-started checklist on the dashboard: what a new installation still lacks, read from
the database each time (never a flag someone ticks), each step with the page that does it, and
gone once done.

Steps are pluggable: ``register(Step(...))`` adds one or replaces the step of the same key.
The "sender" step counts a sender an owner marked verified; the deliverability checks of a later
feature replace it with one that asks for a domain whose SPF, DKIM and DMARC were checked::

    register(Step("sender", "Add a sender and check its domain", ..., done=domain_checked))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse

from tidings.lib.access import has_permission


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    why: str
    url_name: str
    perm: str  # who can do it; others see the step but not its link
    done: Callable[[], bool]
    action: str = "Do it now"
    order: int = 100

    @property
    def url(self) -> str:
        return reverse(self.url_name)


_STEPS: dict[str, Step] = {}


def register(step: Step) -> None:
    _STEPS[step.key] = step


def steps() -> list[Step]:
    return sorted(_STEPS.values(), key=lambda s: (s.order, s.key))


@dataclass(frozen=True)
class Progress:
    remaining: list[tuple[Step, bool]]  # (step, the operator may do it)
    total: int

    @property
    def done(self) -> int:
        return self.total - len(self.remaining)


def progress(user: object) -> Progress | None:
    """The steps still to do; None once every one is done."""
    all_steps = steps()
    remaining = [(s, has_permission(user, s.perm)) for s in all_steps if not s.done()]
    if not remaining:
        return None
    return Progress(remaining=remaining, total=len(all_steps))


# --- the steps of a new installation ------------------------------------------------------------
def _sender_ready() -> bool:
    from tidings.campaigns.models import Sender

    return Sender.objects.filter(verified=True).exists()


def _a_list() -> bool:
    from tidings.audience.models import MailingList

    return MailingList.objects.filter(closed_at__isnull=True).exists()


def _a_form() -> bool:
    from tidings.audience.models import SignupForm

    return SignupForm.objects.exists()


def _people() -> bool:
    from tidings.audience.models import Subscription

    return Subscription.objects.exists()


def _a_template() -> bool:
    from tidings.campaigns.models import Template

    return Template.objects.exists()


def _a_campaign_sent() -> bool:
    from tidings.campaigns.models import Campaign

    return Campaign.objects.filter(started_at__isnull=False).exists()


def notice_reviewed() -> bool:
    from tidings.policy import get_policy

    from .models import NoticeReview

    return NoticeReview.objects.filter(policy_sha256=get_policy().sha256).exists()


def register_defaults() -> None:
    for step in (
        Step(
            "sender",
            "Add a sender and check its domain",
            "The From address of your emails; an owner marks it verified once its domain's "
            "SPF, DKIM and DMARC records are in place.",
            "campaigns:senders",
            "settings",
            _sender_ready,
            "Add a sender",
            10,
        ),
        Step(
            "list",
            "Make a list",
            "A list is a newsletter people subscribe to, about one of your policy's topics.",
            "audience:list-new",
            "content",
            _a_list,
            "Make a list",
            20,
        ),
        Step(
            "form",
            "Put a sign-up form on your site",
            "A hosted page and a snippet for your website, with your policy's wording and "
            "double opt-in.",
            "audience:signup-form-new",
            "content",
            _a_form,
            "Make a sign-up form",
            30,
        ),
        Step(
            "contacts",
            "Import contacts or get your first sign-up",
            "Bring your existing subscribers (from Mailchimp, listmonk, Brevo, HubSpot, Kit, "
            "MailerLite or Substack) or wait for the form's first sign-up.",
            "audience:imports",
            "content",
            _people,
            "Import contacts",
            40,
        ),
        Step(
            "template",
            "Design an email",
            "Start from a newsletter, announcement, invitation or letter and make it yours.",
            "templates_ui:template-new",
            "content",
            _a_template,
            "Design a template",
            50,
        ),
        Step(
            "campaign",
            "Send your first campaign",
            "Write it from your template, preview it, test-send it, then send or schedule it.",
            "campaigns:new",
            "content",
            _a_campaign_sent,
            "Write a campaign",
            60,
        ),
        Step(
            "notice",
            "Review your privacy notice",
            "tidings writes it from your policy file: read it as visitors see it, then mark it "
            "reviewed (again whenever the policy changes).",
            "policy:notice",
            "settings",
            notice_reviewed,
            "Read the notice",
            70,
        ),
    ):
        register(step)
