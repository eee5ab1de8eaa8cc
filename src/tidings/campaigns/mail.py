"""The emails tidings sends on its own (sign-up confirmation, welcome, preference-centre link).

Each is a subject/text/html triple of Jinja templates: shipped defaults below, replaced by an
operator's ``SystemEmailTemplate`` row when there is one.  Operators' templates are rendered in
Jinja's sandbox with a fixed set of plain values (``VARIABLES``), so a template cannot reach the
database, settings or any object; an unknown variable renders as nothing, and a template that
still fails (a syntax error, a call on an undefined name) falls back to the shipped default, so a
typo never stops a confirmation from going out.

The sandbox is the campaigns' hardened one (``rendering.system_environment``: the same refusals,
allow-lists and render limits — loops, calls, output size and time — with Jinja's default
whitespace), so an operator's system email template cannot loop for ever or build gigabytes of
text either; a template over a limit falls back to the default like any other failure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from jinja2 import TemplateError, meta

from tidings.policy import get_policy

from .messages import from_line
from .models import OutgoingMessage, SystemEmailTemplate
from .queue import enqueue_message
from .rendering import SEND_LIMITS, render_metered, static_problems, system_environment

logger = logging.getLogger(__name__)

# What a system email's template may use.  Everything else given to render_system_email is dropped.
VARIABLES = {
    "name": "The person's name, or nothing",
    "first_name": "The first word of their name, or nothing",
    "lists": "The names of the lists concerned (a list: {% for l in lists %}...)",
    "list_names": "The same names, joined: 'Product news and Events'",
    "confirm_url": "The link that confirms a sign-up (confirmation email)",
    "subscriber": "Whether the person already gets one of our lists (confirmation email)",
    "changes": "What else the confirmation does, one line each: the other ways we may contact "
    "the person that they ticked on a form, or consent and details they changed on their "
    "preference page (confirmation email; it must show them)",
    "preferences_url": "The person's preference centre",
    "unsubscribe_url": "The link that unsubscribes at once",
    "meeting_time": "A booked demo's date and time, in the person's timezone (demo emails)",
    "meeting_minutes": "How long the demo lasts, in minutes (demo emails)",
    "reschedule_url": "The link to move a booked demo (demo emails)",
    "cancel_url": "The link to cancel a booked demo (demo emails)",
    "booking_url": "The link to book a new demo (demo emails)",
    "controller_name": "Your organisation's name (from the policy)",
    "controller_address": "Your organisation's postal address (from the policy)",
    # Data-subject requests (rights/): sent to the address in the request, which may belong to
    # nobody we know (rights/emails.py sends them straight through the mailer).
    "kind_label": "What the person asked for: 'a copy of your data', 'erasure'...",
    "verify_url": "The link that verifies a privacy request (rights_verify)",
    "link_days": "How many days a privacy-request link works",
    "due_on": "The date a privacy request is answered by",
    "reason": "The reason given for an extension or a refusal",
    "receipt_lines": "What was done, one line each (rights_receipt)",
    "kept": "Records kept under a legal minimum and when they go, one line each",
    "download_url": "The link to download a copy of the data (rights_receipt, access)",
    "request_ref": "The request's reference number",
    "queue_url": "The operator's page of a request (rights_reminder)",
}

_SIGNATURE_TEXT = "--\n{{ controller_name }}\n{{ controller_address }}\n"
_SIGNATURE_HTML = (
    '<p style="color:#555;font-size:0.9em">{{ controller_name }}<br>{{ controller_address }}</p>'
)

DEFAULT_SYSTEM_EMAILS: dict[str, dict[str, str]] = {
    "confirmation": {
        "subject": "Please confirm: {% if list_names %}{{ list_names }}{% else %}your changes"
        "{% endif %} from {{ controller_name }}",
        "text": (
            "Hello{% if first_name %} {{ first_name }}{% endif %},\n\n"
            "{% if lists %}Someone, probably you, asked {{ controller_name }} to email this "
            "address:\n{% for l in lists %}  - {{ l }}\n{% endfor %}\n{% endif %}"
            "{% if changes %}{% if lists %}And{% else %}Someone, probably you,{% endif %} asked "
            "{{ controller_name }} for these changes:\n"
            "{% for c in changes %}  - {{ c }}\n{% endfor %}\n{% endif %}"
            "To confirm, open this link and press the button on the page:\n"
            "{{ confirm_url }}\n\n"
            "If you did not ask for this, ignore this email: "
            "{% if not lists %}nothing changes.\n\n{% else %}you will not be subscribed"
            "{% if subscriber or changes %} to these, and nothing else changes.\n\n{% else %}, "
            "we will not write again, and your address will be deleted in a few days.\n\n"
            "{% endif %}{% endif %}" + _SIGNATURE_TEXT
        ),
        "html": (
            "<p>Hello{% if first_name %} {{ first_name }}{% endif %},</p>"
            "{% if lists %}<p>Someone, probably you, asked {{ controller_name }} to email this "
            "address:</p><ul>{% for l in lists %}<li>{{ l }}</li>{% endfor %}</ul>{% endif %}"
            "{% if changes %}<p>{% if lists %}And{% else %}Someone, probably you,{% endif %} "
            "asked {{ controller_name }} for these changes:</p>"
            "<ul>{% for c in changes %}<li>{{ c }}</li>{% endfor %}</ul>{% endif %}"
            '<p><a href="{{ confirm_url }}">Confirm {% if lists %}your subscription'
            "{% else %}your changes{% endif %}</a></p>"
            "<p>If you did not ask for this, ignore this email: "
            "{% if not lists %}nothing changes.</p>{% else %}you will not be subscribed"
            "{% if subscriber or changes %} to these, and nothing else changes.</p>{% else %}, "
            "we will not write again, and your address will be deleted in a few days.</p>"
            "{% endif %}{% endif %}" + _SIGNATURE_HTML
        ),
    },
    "welcome": {
        "subject": "Welcome to {{ list_names }}",
        "text": (
            "Hello{% if first_name %} {{ first_name }}{% endif %},\n\n"
            "Thank you for confirming. You are now subscribed to:\n"
            "{% for l in lists %}  - {{ l }}\n{% endfor %}\n"
            "Choose what you receive, or change your details, at any time:\n"
            "{{ preferences_url }}\n\n"
            "Unsubscribe with one click:\n{{ unsubscribe_url }}\n\n" + _SIGNATURE_TEXT
        ),
        "html": (
            "<p>Hello{% if first_name %} {{ first_name }}{% endif %},</p>"
            "<p>Thank you for confirming. You are now subscribed to:</p>"
            "<ul>{% for l in lists %}<li>{{ l }}</li>{% endfor %}</ul>"
            '<p><a href="{{ preferences_url }}">Choose what you receive</a> · '
            '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>' + _SIGNATURE_HTML
        ),
    },
    "demo_booked": {
        "subject": "Your demo with {{ controller_name }}: {{ meeting_time }}",
        "text": (
            "Hello{% if first_name %} {{ first_name }}{% endif %},\n\n"
            "Your {{ meeting_minutes }}-minute demo with {{ controller_name }} is booked for\n"
            "{{ meeting_time }}.\n\n"
            "The invitation is attached: open it to add the demo to your calendar.\n\n"
            "Another time suits you better? Move it here:\n{{ reschedule_url }}\n\n"
            "Cannot make it? Cancel it here:\n{{ cancel_url }}\n\n" + _SIGNATURE_TEXT
        ),
        "html": "",
    },
    "demo_rescheduled": {
        "subject": "Your demo with {{ controller_name }} has moved: {{ meeting_time }}",
        "text": (
            "Hello{% if first_name %} {{ first_name }}{% endif %},\n\n"
            "Your demo with {{ controller_name }} is now on\n{{ meeting_time }}.\n\n"
            "The updated invitation is attached: it replaces the earlier one in your "
            "calendar.\n\n"
            "Move it again:\n{{ reschedule_url }}\n\n"
            "Cancel it:\n{{ cancel_url }}\n\n" + _SIGNATURE_TEXT
        ),
        "html": "",
    },
    "demo_reminder": {
        "subject": "Reminder: your demo with {{ controller_name }}, {{ meeting_time }}",
        "text": (
            "Hello{% if first_name %} {{ first_name }}{% endif %},\n\n"
            "A reminder: your {{ meeting_minutes }}-minute demo with {{ controller_name }} is on\n"
            "{{ meeting_time }}.\n\n"
            "Another time suits you better? Move it here:\n{{ reschedule_url }}\n\n"
            "Cannot make it? Cancel it here:\n{{ cancel_url }}\n\n"
            "You get this email because you booked the demo; it is the only reminder of this "
            "kind we send for it.\n\n" + _SIGNATURE_TEXT
        ),
        "html": "",
    },
    "demo_cancelled": {
        "subject": "Your demo with {{ controller_name }} is cancelled",
        "text": (
            "Hello{% if first_name %} {{ first_name }}{% endif %},\n\n"
            "Your demo with {{ controller_name }} on {{ meeting_time }} is cancelled. "
            "The attached cancellation removes it from your calendar.\n\n"
            "Book another time whenever you like:\n{{ booking_url }}\n\n" + _SIGNATURE_TEXT
        ),
        "html": "",
    },
    "preferences_link": {
        "subject": "Your link to manage your emails from {{ controller_name }}",
        "text": (
            "Hello{% if first_name %} {{ first_name }}{% endif %},\n\n"
            "Here is your personal link to choose which emails you receive from "
            "{{ controller_name }}, change your details or unsubscribe:\n"
            "{{ preferences_url }}\n\n"
            "If you did not ask for it, you can ignore this email.\n\n" + _SIGNATURE_TEXT
        ),
        "html": "",
    },
    # --- data-subject requests (rights/) -----------------------------------------------------
    "rights_verify": {
        "subject": "Please confirm your privacy request to {{ controller_name }}",
        "text": (
            "Hello,\n\n"
            "Someone, probably you, asked {{ controller_name }} for {{ kind_label }} "
            "for this email address (request {{ request_ref }}).\n\n"
            "Nothing happens until you confirm. To confirm that this address is yours, open "
            "this link (it works for {{ link_days }} days) and press the button on the page:\n"
            "{{ verify_url }}\n\n"
            "If you did not ask for this, ignore this email: nothing will change.\n\n"
            + _SIGNATURE_TEXT
        ),
        "html": "",
    },
    "rights_extended": {
        "subject": "Your privacy request {{ request_ref }}: we need more time",
        "text": (
            "Hello,\n\n"
            "We are working on your request for {{ kind_label }} (request {{ request_ref }}). "
            "It needs more time than the usual month, and we will answer by {{ due_on }}.\n\n"
            "Why: {{ reason }}\n\n"
            "If you are unhappy with this, you may complain to the supervisory authority.\n\n"
            + _SIGNATURE_TEXT
        ),
        "html": "",
    },
    "rights_receipt": {
        "subject": "Your privacy request {{ request_ref }} is done",
        "text": (
            "Hello,\n\n"
            "We have carried out your request for {{ kind_label }} (request {{ request_ref }}).\n"
            "{% for line in receipt_lines %}  - {{ line }}\n{% endfor %}"
            "{% if kept %}\nWhat the law requires us to keep, and when it goes:\n"
            "{% for line in kept %}  - {{ line }}\n{% endfor %}{% endif %}"
            "{% if download_url %}\nDownload your copy (the link works for {{ link_days }} "
            "days):\n{{ download_url }}\n{% endif %}\n" + _SIGNATURE_TEXT
        ),
        "html": "",
    },
    "rights_refused": {
        "subject": "Your privacy request {{ request_ref }}",
        "text": (
            "Hello,\n\n"
            "We cannot carry out your request for {{ kind_label }} (request {{ request_ref }}).\n"
            "\nWhy: {{ reason }}\n\n"
            "You may complain to the supervisory authority, or write to us to ask again.\n\n"
            + _SIGNATURE_TEXT
        ),
        "html": "",
    },
    "rights_reminder": {
        "subject": "Privacy request {{ request_ref }} is due on {{ due_on }}",
        "text": (
            "A privacy request ({{ kind_label }}) is due on {{ due_on }} and is still open.\n"
            "{{ queue_url }}\n"
        ),
        "html": "",
    },
}


def register_system_email(
    key: str, default: Mapping[str, str], variables: Mapping[str, str] | None = None
) -> None:
    """Add another app's system email (its shipped subject/text/html and the extra variables
    its template may use), so it is rendered, edited and sent like the ones above.  Called from
    the app's ``ready()``; registering the same key again replaces it."""
    DEFAULT_SYSTEM_EMAILS[key] = {"html": "", **default}
    VARIABLES.update(variables or {})


# What an operator's template of a system email must show, by email: the person must be able
# to see what they are confirming (the lists, and the other changes the link makes) and the
# link.  The edit form refuses a template without them (``template_problems``); a template
# saved before this rule is passed over for the shipped one whenever one of them has something
# to show (``render_system_email``).
REQUIRED_VARIABLES: dict[str, dict[str, str]] = {
    "confirmation": {
        "confirm_url": "{{ confirm_url }} (the link that confirms)",
        "changes": "{% for c in changes %}…{% endfor %} (the other things the link confirms: "
        "a telephone or post box ticked on a form, changes made on the preference page)",
    },
}


def _used_names(source: str) -> frozenset[str]:
    env = system_environment(False)
    try:
        return frozenset(meta.find_undeclared_variables(env.parse(source)))
    except (TemplateError, RecursionError):
        return frozenset()


def missing_variables(key: str, text: str, html: str = "") -> list[str]:
    """The variables system email ``key`` must show that its text (or, when it has one, its
    HTML) body leaves out."""
    bodies = [text, html] if html.strip() else [text]
    return [
        name
        for name in REQUIRED_VARIABLES.get(key, {})
        if any(name not in _used_names(body) for body in bodies)
    ]


def template_problems(subject: str, text: str, html: str = "", *, key: str = "") -> list[str]:
    """What is wrong with an operator's template, for the edit form: [] when it is usable.
    ``key``: which system email it is, to check it shows what that email must."""
    problems = []
    for label, source, autoescape in (
        ("Subject", subject, False),
        ("Text", text, False),
        ("HTML", html, True),
    ):
        env = system_environment(autoescape)
        try:
            # Unknown names print nothing here (a template may omit any variable): every name
            # the template uses counts as known; syntax and refused constructs are reported.
            known = frozenset(meta.find_undeclared_variables(env.parse(source)))
        except TemplateError:
            known = frozenset()
        except RecursionError:
            problems.append(f"{label}: the template nests brackets or tags too deeply")
            continue
        for problem in static_problems(source, label, env, known):
            where = f"{problem.location}: " if problem.location else ""
            problems.append(f"{label}: {where}{problem.message}")
    if not text.strip():
        problems.append("Text: an email needs a plain-text body")
    for name in missing_variables(key, text, html):
        where = "Text and HTML" if html.strip() else "Text"
        problems.append(
            f"{where}: this email must show {REQUIRED_VARIABLES[key][name]}, so that people "
            "see what they are confirming"
        )
    return problems


def _join_names(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _variables(context: Mapping[str, Any]) -> dict[str, Any]:
    controller = get_policy().controller
    values: dict[str, Any] = {"controller_name": controller.name}
    values["controller_address"] = controller.address
    values.update({k: v for k, v in context.items() if k in VARIABLES})
    lists = [str(name) for name in values.get("lists") or []]
    values["lists"] = lists
    values.setdefault("list_names", _join_names(lists))
    name = str(values.get("name") or "")
    values["name"] = name
    values.setdefault("first_name", name.split()[0] if name.split() else "")
    return values


def _render(source: dict[str, str], values: dict[str, Any]) -> tuple[str, str, str]:
    text_env, html_env = system_environment(False), system_environment(True)
    subject = render_metered(text_env.from_string(source["subject"]), values, SEND_LIMITS)
    text = render_metered(text_env.from_string(source["text"]), values, SEND_LIMITS)
    html = source.get("html") or ""
    if html:
        html = render_metered(html_env.from_string(html), values, SEND_LIMITS)
    # A subject is one header line: newlines would be refused by the mail API (or worse).
    return " ".join(subject.split()), text, html


def render_system_email(key: str, context: Mapping[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) of system email ``key``; html is "" when there is none."""
    values = _variables(context)
    default = DEFAULT_SYSTEM_EMAILS[key]
    row = SystemEmailTemplate.objects.filter(key=key).first()
    if row is not None:
        source = {"subject": row.subject, "text": row.text_body, "html": row.html_body}
        hidden = [
            name
            for name in missing_variables(key, row.text_body, row.html_body)
            if values.get(name)
        ]
        if hidden:
            # Saved before the edit form asked for them: this email has something to show
            # that the operator's wording would leave out (what the person is confirming).
            logger.warning(
                "system email %s: the operator's template leaves out %s; using default",
                key,
                ", ".join(hidden),
            )
        else:
            try:
                return _render(source, values)
            except Exception:  # any error at all ({{ 1/0 }} too): the email must still go out
                logger.warning(
                    "system email %s: the operator's template failed; using default", key
                )
    return _render(default, values)


def from_address() -> str:
    """The From line of the mail tidings sends on its own behalf: ``TIDINGS_FROM_EMAIL``, named
    after the policy's controller when the setting gives no name."""
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    if not address or (name and address.isascii()):
        return settings.DEFAULT_FROM_EMAIL
    return from_line(name or get_policy().controller.name, address)


def sender_from_header(sender: Any) -> str:
    """The From line for a campaign's ``Sender`` (None: the installation's ``from_address()``)."""
    if sender is None:
        return from_address()
    return from_line(sender.name, sender.email)


def send_system_email(
    contact: Any,
    key: str,
    context: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    attachments: Sequence[Mapping[str, str]] = (),
) -> None:
    """Render system email ``key`` for ``contact`` now, and queue it for the delivery engine.

    The message is queued in the caller's transaction: nothing is sent if it rolls back, and once
    it commits the message waits in the queue (``OutgoingMessage``) until a worker sends it,
    ahead of any campaign mail, through the same transports, limits and retries.  A sign-up
    confirmation, which someone is waiting for, goes before everything else.
    """
    subject, text, html = render_system_email(key, {"name": contact.name, **context})
    enqueue_message(
        contact,
        kind=f"system:{key}",
        subject=subject,
        text=text,
        html=html,
        from_email=from_address(),
        headers=headers,
        attachments=attachments,
        priority=(
            OutgoingMessage.PRIORITY_URGENT
            if key == "confirmation"
            else OutgoingMessage.PRIORITY_NORMAL
        ),
    )
