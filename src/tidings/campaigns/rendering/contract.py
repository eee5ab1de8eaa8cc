"""What the rest of tidings sees of rendering: problems, links, limits, a template's values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from tidings.audience.tokens import absolute_url
from tidings.policy import get_policy


class TemplateProblem(ValueError):
    """Something wrong with a template, for the operator: where (``part``, 1-based ``line`` and
    ``column`` in that part's source, when known) and what (``message``, one sentence, no personal
    data).  ``part`` is "subject", "preheader", "body", "text" or "layout"."""

    def __init__(
        self, message: str, *, part: str, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.part = part
        self.line = line
        self.column = column

    @property
    def location(self) -> str:
        """ "line 3, column 7" (or less, when less is known)."""
        if self.line is None:
            return ""
        return f"line {self.line}" + (f", column {self.column}" if self.column else "")

    def __str__(self) -> str:
        where = ", ".join(filter(None, [self.part, self.location]))
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"TemplateProblem({self.message!r}, part={self.part!r}, line={self.line!r}, "
            f"column={self.column!r})"
        )


@dataclass(frozen=True)
class MessageLinks:
    """The personal links of one message, made by the engine (audience.tokens)."""

    unsubscribe_url: str
    preferences_url: str
    view_url: str


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    # The preheader as text, personalised: only when asked for (``render(preheader=True)``,
    # for previews and the archive); a message carries it inside its HTML.
    preheader: str = ""


@dataclass(frozen=True)
class Limits:
    """What one render of one message may use.  Exceeding any of them is a TemplateProblem."""

    seconds: float = 0.5
    output_chars: int = 1_000_000  # per part of the finished message
    work_chars: int = 4_000_000  # all text the template makes or outputs while rendering
    loop_iterations: int = 10_000
    calls: int = 10_000


# At send time a slow machine or a garbage-collector pause must not fail a campaign, so the time
# limit is generous; at save time the sample render must finish ten times faster.
SEND_LIMITS = Limits()
CHECK_LIMITS = Limits(seconds=0.05)
MAX_STRING = 1_000_000  # any one string a template makes
MAX_ITEMS = 10_000  # any one range or list a template makes
MAX_SOURCE = 200_000  # characters in one part's source
# Jinja compiles about 0.15 ms per tag, and a check compiles each part a few times: this keeps
# the check of the largest allowed template near a second.
MAX_TAGS = 1_500

# --- the values a template sees ----------------------------------------------------------------
VARIABLES = {
    "contact.name": "The person's full name, or nothing",
    "contact.first_name": "The first word of their name, or nothing",
    "contact.email": "Their email address",
    "contact.company": "Their company, or nothing",
    "contact.job_title": "Their job title, or nothing",
    "contact.attributes.KEY": (
        "Another field the policy allows; nothing when missing: {{ contact.attributes.plan "
        '| default("friend") }}'
    ),
    "unsubscribe_url": "Unsubscribes them at once (every layout must link to it)",
    "preferences_url": "Their preference centre (every layout must link to it)",
    "view_url": "This email on the web ('view in your browser')",
    "controller.name": "Your organisation's name (from the policy)",
    "controller.address": "Your postal address (from the policy; every layout must show it)",
    "campaign.subject": "The message's subject, as this person gets it",
    "data.KEY": (
        "A value given with a transactional message (an order number, a link): "
        "{{ data.order_number }}; nothing in campaigns"
    ),
}
LAYOUT_VARIABLES = {"content": "Where the campaign's body goes: {{ content }}, once"}

CONTACT_FIELDS = ("name", "first_name", "email", "company", "job_title", "attributes")
CONTROLLER_FIELDS = ("name", "address", "email", "website")
CAMPAIGN_FIELDS = ("subject",)
MESSAGE_NAMES = frozenset(
    {"contact", "unsubscribe_url", "preferences_url", "view_url", "controller", "campaign", "data"}
)
FIELDS = {"contact": CONTACT_FIELDS, "controller": CONTROLLER_FIELDS, "campaign": CAMPAIGN_FIELDS}

SAMPLE_CONTACT = SimpleNamespace(
    pk=None,
    name="Ada Lovelace",
    email="ada@example.com",
    company="Analytical Engines Ltd",
    job_title="Mathematician",
    attributes={},
)


def contact_values(contact: Any) -> dict[str, Any]:
    """The plain values a template sees as ``contact``: a Contact (or anything with its
    attributes, or a mapping) reduced to strings and its JSON ``attributes``."""
    if isinstance(contact, Mapping):
        get = contact.get
        name, email = get("name") or "", get("email") or ""
        company, job_title, attributes = get("company"), get("job_title"), get("attributes")
    else:
        name, email = contact.name or "", contact.email or ""
        company, job_title = contact.company, contact.job_title
        attributes = contact.attributes
    return {
        "name": name,
        "first_name": next(iter(name.split(None, 1)), ""),  # a blank name has no first word
        "email": email,
        "company": company or "",
        "job_title": job_title or "",
        # Shared, not copied: the sandbox cannot change a dict (ImmutableSandboxedEnvironment).
        "attributes": attributes if type(attributes) is dict else {},
    }


def controller_values() -> dict[str, str]:

    controller = get_policy().controller
    return {
        "name": controller.name,
        "address": controller.address,
        "email": str(controller.email),
        "website": str(controller.website or ""),
    }


def sample_links() -> MessageLinks:

    return MessageLinks(
        unsubscribe_url=absolute_url("/sample/unsubscribe/"),
        preferences_url=absolute_url("/sample/preferences/"),
        view_url=absolute_url("/sample/view/"),
    )
