"""The emails the CRM sends to people, as system emails (editable by operators).

Registered with ``campaigns.mail.register_system_email`` from ``CrmConfig.ready``: rendered in
the same sandbox, editable under Settings → emails, queued for the delivery engine.  Each one
goes from the support address (``TIDINGS_SUPPORT_ADDRESS``) with the conversation's reply
address as Reply-To, so a reply joins the conversation (``crm/conversations.py``).

The acknowledgement says what we hold, why and for how long in the policy's own words for the
purpose of the record (``policy_words``): the purpose's title and lawful basis, the fields it
collects that we hold, its retention rule and its processors, with a link to the privacy notice.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from tidings.audience.tokens import absolute_url
from tidings.policy import get_policy
from tidings.policy.plain import field_label, lawful_basis_text, retention_text

from .models import Enquiry, SupportRequest

ACKNOWLEDGEMENT = "crm_acknowledgement"
HELD = "crm_held"
ATTACHMENTS = "crm_attachments"

_SIGNATURE = "--\n{{ controller_name }}\n{{ controller_address }}\n"
_POLICY_WORDS = (
    "What we hold: {{ held_data }}.\n"
    "Why: {{ purpose_title }} ({{ purpose_basis }}).\n"
    "How long: we keep it {{ retention_period }}.\n"
    "{% if processors %}Who stores it for us: {{ processors }}.\n{% endif %}"
    "How we use your details: {{ privacy_url }}\n"
)

VARIABLES = {
    "reference": "The conversation's reference: E-12 (an enquiry), R-7 (a support request)",
    "held_data": "What we hold about the person under the purpose, in words (CRM emails)",
    "purpose_title": "The policy's title of the purpose the record is kept for (CRM emails)",
    "purpose_basis": "The purpose's lawful basis, in words (CRM emails)",
    "retention_period": "How long the record is kept, the policy's rule in words (CRM emails)",
    "processors": "Who stores the record for us, and where (CRM emails)",
    "privacy_url": "The privacy notice",
    "attachment_count": "How many attachments were not kept (attachments email)",
}

DEFAULTS: dict[str, dict[str, str]] = {
    ACKNOWLEDGEMENT: {
        "subject": "We have your message ({{ reference }})",
        "text": (
            "Hello{% if first_name %} {{ first_name }}{% endif %},\n\n"
            "Thank you for writing to {{ controller_name }}. We have your message and will "
            "answer you soon. To add something, reply to this email: it joins the same "
            "conversation.\n\n" + _POLICY_WORDS + "\n" + _SIGNATURE
        ),
    },
    HELD: {
        "subject": "We have your message ({{ reference }})",
        "text": (
            "Hello{% if first_name %} {{ first_name }}{% endif %},\n\n"
            "Thank you for your message. Your address is not one we have as a support contact "
            "under a current contract with {{ controller_name }}, so a member of our team will "
            "look at it first and write to you. There is nothing you need to do.\n\n"
            + _POLICY_WORDS
            + "\n"
            + _SIGNATURE
        ),
    },
    ATTACHMENTS: {
        "subject": "About the files you sent us ({{ reference }})",
        "text": (
            "Hello{% if first_name %} {{ first_name }}{% endif %},\n\n"
            "Your message reached us, but we did not keep the {{ attachment_count }} "
            "file{% if attachment_count != 1 %}s{% endif %} attached to it: our privacy policy "
            "does not let us keep files sent for this purpose ({{ purpose_title }}). If they "
            "matter, please tell us in words what they show, in a reply to this email.\n\n"
            "How we use your details: {{ privacy_url }}\n\n" + _SIGNATURE
        ),
    },
}


def register() -> None:
    from tidings.campaigns.mail import register_system_email

    for key, default in DEFAULTS.items():
        register_system_email(key, default, VARIABLES)


def reference(record: Enquiry | SupportRequest) -> str:
    return f"E-{record.pk}" if isinstance(record, Enquiry) else f"R-{record.pk}"


def purpose_of(record: Enquiry | SupportRequest) -> str:
    from .actions import ENQUIRY, SUPPORT

    return ENQUIRY if isinstance(record, Enquiry) else SUPPORT


def _held(contact: Any, fields: tuple[str, ...]) -> list[str]:
    held = []
    for name in fields:
        value = (
            getattr(contact, name, "")
            if name in contact.COLUMN_FIELDS
            else (contact.attributes or {}).get(name)
        )
        if value:
            held.append("your email address" if name == "email" else f"your {field_label(name)}")
    return held


def policy_words(record: Enquiry | SupportRequest) -> dict[str, Any]:
    """What we hold, why and for how long, in the policy's words for the record's purpose."""
    policy = get_policy()
    purpose_key = purpose_of(record)
    purpose = policy.purpose(purpose_key)
    contact = record.contact if isinstance(record, Enquiry) else record.support_contact.contact
    held = _held(contact, policy.fields_for(purpose_key).all)
    held.append("your messages to us and our answers")
    basis, _ = lawful_basis_text(purpose.lawful_basis)
    processors = [f"{p.name} ({p.location_name})" for p in policy.processors_for(purpose_key)]
    return {
        "name": contact.name,
        "reference": reference(record),
        "held_data": ", ".join(held[:-1]) + " and " + held[-1] if len(held) > 1 else held[0],
        "purpose_title": purpose.title,
        "purpose_basis": basis.lower(),
        "retention_period": retention_text(policy, purpose.record)
        if purpose.record in policy.retention
        else "as long as the law requires",
        "processors": "; ".join(processors),
        "privacy_url": absolute_url(reverse("policy:notice")),
    }
