"""The policy in plain English: used by the notice page, the summary and the access package."""

from __future__ import annotations

from .records import RECORD_KINDS
from .schema import LAWFUL_BASIS_TEXT, Policy


def _join_or(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + ", or " + parts[-1]


def _join_and(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def retention_text(policy: Policy, record_kind: str) -> str:
    """How long records of a kind are kept, as a phrase for people.

    E.g. "12 months after the first of: your company's contract ends, or we learn you left it".
    """
    rule = policy.retention_for(record_kind)
    kind = RECORD_KINDS[record_kind]
    phrases = [kind.clocks[name] for name in rule.clock_names(kind)]
    if rule.while_state:
        text = f"while {rule.while_state}"
        if phrases:
            text += f", which ends at the first of: {_join_or(phrases)}"
    elif len(phrases) == 1:
        text = f"{rule.duration} after {phrases[0]}"
    elif rule.combine() == "first":
        text = f"{rule.duration} after the first of: {_join_or(phrases)}"
    else:
        text = f"{rule.duration} after the last of: {_join_and(phrases)}"
    return text


def retention_notes(policy: Policy, record_kind: str) -> list[str]:
    """The qualifications that go with a rule, each a sentence."""
    rule = policy.retention_for(record_kind)
    notes = []
    if rule.minimum:
        notes.append(
            "This is a legal minimum: we must keep these records for the whole period, "
            "even if you ask us to erase them; they are deleted when it ends."
        )
    if rule.extendable_on_request:
        notes.append("You may ask us to keep them for longer.")
    if rule.on_end == "anonymise":
        notes.append("When the period ends we remove everything that identifies you.")
    if record_kind == "subscription":
        notes.append(
            "After you leave, we keep only a one-way hash of your email address, so that we "
            "never add you again by mistake."
        )
    return notes


def lawful_basis_text(basis: str) -> tuple[str, str]:
    return LAWFUL_BASIS_TEXT[basis]


def field_label(field: str) -> str:
    return field.replace("_", " ")


# Where the words for a field are not just its name with spaces.
FIELD_TITLES = {
    "email": "Email address",
    "phone": "Phone number",
    "ip_address": "IP address",
    "dob": "Date of birth",
    "vat_number": "VAT number",
}


def field_title(field: str) -> str:
    """A policy field's name as a label: "job_title" → "Job title" (never "Jobtitle")."""
    return FIELD_TITLES.get(field) or field.replace("_", " ").strip().capitalize()


def fields_text(fields: tuple[str, ...]) -> str:
    return _join_and([field_label(f) for f in fields])
