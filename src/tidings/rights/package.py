"""The access package (Art. 15 and 20): everything held about one person, in one ZIP file.

- ``summary.html``: a document for people: a table of contents, then each kind of data with why
  we hold it (said once per purpose: the policy's purposes, lawful basis, processors and where
  they are, where it came from, how long we keep it), each record in words (dates and times in
  the controller's time zone, subjects as the person received them, no internal identifiers),
  and the person's rights, with the complaint to the supervisory authority.  It reads on a
  phone (375 px: records are lists, not wide tables) and prints;
- ``data.json``: the same data, complete, for machines (portability): every column, ids and
  timestamps in ISO 8601 included;
- ``<source>.csv``: one file per kind of data, one row per record.

Built from the personal-data registry (``audience.sources``), so every app's records are in it, and
from nothing else: each source exports only the rows of the contact it is given.  The package is
built when it is downloaded and never stored, so no copy of anyone's data lies around on disk.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from tidings.audience.merge import twins_of
from tidings.audience.models import ConsentEvent
from tidings.audience.sources import PersonalData, day_in_words, sources, time_in_words
from tidings.lib.csv_export import safe_row
from tidings.policy import Policy, get_policy
from tidings.policy.notice import RIGHTS
from tidings.policy.plain import lawful_basis_text, retention_notes, retention_text
from tidings.policy.records import RECORD_KINDS

from .models import RightsRequest


@dataclass(frozen=True)
class Section:
    source: PersonalData
    rows: list[dict[str, Any]]
    why: dict[str, Any]

    @property
    def anchor(self) -> str:
        return "data-" + re.sub(r"[^a-z0-9]+", "-", self.source.name.lower()).strip("-")

    @property
    def columns(self) -> list[str]:
        columns: list[str] = []
        for row in self.rows:
            columns += [key for key in row if key not in columns]
        return columns

    @property
    def table(self) -> list[list[Any]]:
        return [[_cell(row.get(c)) for c in self.columns] for row in self.rows]

    @property
    def records(self) -> list[list[tuple[str, str]]]:
        """Each record as (label, words) pairs for people: internal identifiers left out (they
        are in data.json), empty values left out, dates and times in words."""
        return [in_words(self.source.name, row) for row in self.rows]


@dataclass
class Category:
    """Sections held for the same reason: one "why we hold this" for all of them."""

    key: str
    title: str
    why: dict[str, Any]
    sections: list[Section] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return "why-" + re.sub(r"[^a-z0-9]+", "-", self.key.lower()).strip("-")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# --- records in words -------------------------------------------------------------------------
# Keys that identify rows inside tidings, or record how it works: in data.json, not the summary.
INTERNAL = frozenset({"reference", "enquiry", "wording_sha256", "source_ref", "id"})
# Counts that say something only when there is one ("Attachments not kept: 0" says nothing).
SHOWN_WHEN_ANY = frozenset({"attachments_not_kept"})

LABELS = {
    "email": "Email address",
    "phone": "Phone",
    "job_title": "Job title",
    "work_address": "Work address",
    "created_at": "Recorded",
    "updated_at": "Last changed",
    "last_contact_at": "Our last contact with you",
    "last_opened_at": "You last opened one of our emails",
    "last_clicked_at": "You last clicked a link in one of our emails",
    "last_received_at": "We last sent you a campaign",
    "confirmed_at": "Confirmed",
    "unsubscribed_at": "Left the list",
    "sent_at": "Sent",
    "queued_at": "Written",
    "received_at": "Received",
    "due_on": "Answer due by",
    "extended_to": "Extended to",
    "extension_reason": "Why we needed longer",
    "closed_at": "Closed",
    "refusal_reason": "Why we refused",
    "details": "What you wrote with your request",
    "kept_until": "Kept at your request until",
    "removed_by_screening": "Removed from what you wrote",
    "order_reference": "Order number",
    "invoice_address": "Invoice address",
    "lines": "What you ordered",
    "left_employer": "You left the company on",
    "your_timezone": "Your time zone",
    "with": "With",
    "start": "Starts",
    "end": "Ends",
    "booked_at": "Booked",
    "cancelled_at": "Cancelled",
    "at": "When",
    "when": "When",
    "ip_address": "IP address",
    "sent_to": "Sent to",
    "what": "What",
    "by": "By",
    "event": "What happened",
    "kind": "Kind",
    "state": "Progress",
    "since": "Since",
    "detail": "Detail",
    "outcome": "What we did",
}

# Machine words some columns hold ("bounce_hard", "pipe"), per source and column, in words.
_BOUNCE_SOURCES = {
    "pipe": "our mail server",
    "imap": "our bounce mailbox",
    "pop3": "our bounce mailbox",
}
# Who wrote each message of a conversation, as the person reads it ("From them" is the
# operators' word for the person).
_MESSAGE_FROM = {"From them": "You", "From us": "Us", "Internal note": "Our internal note"}
_SUPPORT_MAIL_SOURCES = {
    "pipe": "Delivered by our mail server",
    "imap": "Fetched from our support mailbox",
    "pop3": "Fetched from our support mailbox",
}
# What kind of email each was ("system:welcome", "journey:12": the queue's machine words, some
# with an internal id), by the part before the colon, then the system email's key.
_EMAIL_KINDS = {
    "outbox": "Email",
    "crm": "Our answer to your enquiry or request",
    "journey": "Email of an automated series",
    "transactional": "Email about something you did",
}
_SYSTEM_EMAILS = {
    "confirmation": "Request to confirm your subscription",
    "welcome": "Welcome email",
    "preferences_link": "Link to your email preferences",
    "crm_acknowledgement": "Acknowledgement of your enquiry or request",
    "crm_held": "Notice that your support request is held for a check",
    "crm_attachments": "Notice that files you sent were not kept",
    "demo_booked": "Confirmation of your demo booking",
    "demo_rescheduled": "Notice that your demo was moved",
    "demo_cancelled": "Notice that your demo was cancelled",
    "demo_reminder": "Reminder of your demo booking",
    "rights_verify": "Request to confirm your privacy request",
    "rights_extended": "Notice that we need longer for your privacy request",
    "rights_receipt": "Receipt for your privacy request",
    "rights_refused": "Answer refusing your privacy request",
}
_EMAIL_EVENTS = {
    "open": "You opened it",
    "click": "You clicked a link in it",
    "bounce_hard": "It could not be delivered",
    "bounce_soft": "It could not be delivered for a while",
    "complaint": "It was reported as spam",
    "unsubscribe": "You unsubscribed through it",
}


def email_kind(text: str) -> str:
    head, _, key = text.partition(":")
    if head == "system":
        return _SYSTEM_EMAILS.get(key) or key.replace("_", " ").capitalize() + " email"
    return _EMAIL_KINDS.get(head, "Email")


def support_mail_outcome(text: str) -> str:
    """What became of a mail to the support address, as the operators' note says it, with the
    references the person was given ("E-3", "R-2") instead of internal numbers, and without how
    the mail was matched ("by In-Reply-To") or the bounce report's number."""
    text = re.sub(r"\s*\((?:by [^)]*|report #\d+)\)", "", text)
    text = re.sub(r"\benquiry #(\d+)", r"enquiry E-\1", text)
    text = re.sub(r"\b(?:support )?request #(\d+)", r"support request R-\1", text)
    return text[:1].upper() + text[1:]


WORDS: dict[tuple[str, str], dict[str, str]] = {
    ("privacy_requests", "kind"): {k: v.split(":")[0] for k, v in RightsRequest.Kind.choices},
    ("privacy_requests", "state"): dict(RightsRequest.State.choices),
    ("bounce_reports", "source"): _BOUNCE_SOURCES,
    ("consent", "source"): dict(ConsentEvent.Source.choices),
    ("enquiry_messages", "from"): _MESSAGE_FROM,
    ("support_messages", "from"): _MESSAGE_FROM,
    ("support_mail", "source"): _SUPPORT_MAIL_SOURCES,
    ("email_events", "event"): _EMAIL_EVENTS,
}
# Columns that hold a machine word (a status, a channel): shown capitalised, underscores as spaces.
ENUMERATED = frozenset(
    {"status", "state", "channel", "event", "kind", "action", "source", "reason"}
)

_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def label(key: str) -> str:
    if key.startswith("attribute:"):
        key = key.split(":", 1)[1]
    return LABELS.get(key) or key.replace("_", " ").capitalize()


def words(source: str, key: str, value: Any) -> str:
    """One exported value as a person reads it."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "description" in v for v in value):
            return "; ".join(_order_line(v) for v in value)
        return ", ".join(words(source, key, v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{label(k)}: {words(source, k, v)}" for k, v in value.items())
    text = str(value)
    if _ISO_DATETIME.match(text):
        try:
            return time_in_words(datetime.fromisoformat(text))
        except ValueError:
            return text
    if _ISO_DATE.match(text):
        return day_in_words(date.fromisoformat(text))
    known = WORDS.get((source, key))
    if known is not None and text in known:
        return known[text]
    if (source, key) == ("emails", "kind"):
        return email_kind(text)
    if (source, key) == ("support_mail", "outcome"):
        return support_mail_outcome(text)
    if key in ENUMERATED and re.fullmatch(r"[a-z][a-z_: ]*", text):
        if key == "kind" and text.startswith("system:"):
            return text.split(":", 1)[1].replace("_", " ").capitalize() + " email"
        return text.replace("_", " ").replace(":", ": ").capitalize()
    return text


def _order_line(line: dict[str, Any]) -> str:
    text = f"{line.get('quantity', 1)} × {line.get('description', '')}"
    if line.get("unit_price"):
        text += f" at {line['unit_price']} each"
    return text


def _consent(row: dict[str, Any]) -> list[tuple[str, str]]:
    """A consent event: what was given or withdrawn, for what, how, in which words."""
    granted = row.get("action") == ConsentEvent.Action.GRANTED
    what = "You gave your consent to" if granted else "Your consent was withdrawn for"
    key = str(row.get("purpose", ""))
    policy = get_policy()
    purpose = key.replace("_", " ")
    if key in policy.purposes:
        title = policy.purpose(key).title
        purpose = title[:1].lower() + title[1:]
    scope = [
        part for part in (row.get("list"), row.get("channel") and f"by {row['channel']}") if part
    ]
    record = [
        ("When", words("consent", "when", row.get("when", ""))),
        ("What", f"{what} {purpose}" + (f" ({', '.join(scope)})" if scope else "") + "."),
        ("How", words("consent", "source", row.get("source", ""))),
    ]
    if row.get("wording"):
        record.append(("The words you agreed to", str(row["wording"])))
    if row.get("ip_address"):
        record.append(("IP address", str(row["ip_address"])))
    shown = {"when", "action", "purpose", "list", "channel", "topic", "source", "wording"}
    shown |= {"ip_address"} | INTERNAL
    record += [(label(k), words("consent", k, v)) for k, v in row.items() if k not in shown and v]
    return record


def in_words(source: str, row: dict[str, Any]) -> list[tuple[str, str]]:
    if source == "consent":
        return _consent(row)
    return [
        (label(key), words(source, key, value))
        for key, value in row.items()
        if key not in INTERNAL
        and value not in ("", None, [], {})
        and not (key in SHOWN_WHEN_ANY and value == 0)
    ]


# --- why we hold it ---------------------------------------------------------------------------
def why_held(source: PersonalData, policy: Policy) -> dict[str, Any]:
    """From the policy: the purposes a source's records serve, their lawful basis, processors
    and locations, where the data came from, and how long it is kept."""
    kind = source.record_kind
    purposes = []
    for key in policy.purposes_for_record(kind) if kind else []:
        purpose = policy.purpose(key)
        basis, explanation = lawful_basis_text(purpose.lawful_basis)
        purposes.append(
            {
                "purpose": purpose.title,
                "lawful_basis": basis,
                "lawful_basis_means": explanation,
                "sources": list(purpose.sources),
                "recipients": [
                    {
                        "name": p.name,
                        "role": p.role,
                        "location": p.location_name,
                        "transfer_safeguard": p.transfer_safeguard or "",
                    }
                    for p in policy.processors_for(key)
                ],
            }
        )
    retention = ""
    notes: list[str] = []
    if kind and kind in policy.retention:
        retention = f"Kept {retention_text(policy, kind)}."
        notes = retention_notes(policy, kind)
    return {
        "about": source.about,
        "purposes": purposes,
        "retention": retention or source.retention or "Kept as long as the records it belongs to.",
        "retention_notes": notes,
    }


def rights_section(policy: Policy) -> dict[str, Any]:
    controller = policy.controller
    return {
        "rights": [{"right": name, "means": text} for name, text in RIGHTS],
        "contact": policy.rights.contact,
        "controller": {
            "name": controller.name,
            "address": controller.address,
            "email": str(controller.email),
        },
        "complaint": {
            "authority": controller.supervisory_authority.name,
            "url": str(controller.supervisory_authority.url),
        },
    }


def sections_for(contact: Any) -> list[Section]:
    """Every source's section, the person's own details first.

    With the person's contact go the contacts of the same address once case is folded that the
    upgrade to case-folded address keys kept apart (audience migration 0011) until an operator
    merges them: one mailbox, one person, as erasure has it too."""
    policy = get_policy()
    ordered = sorted(sources(), key=lambda s: (s.name != "contact", s.order, s.name))
    people = [contact, *twins_of(contact)] if contact is not None else []
    return [
        Section(
            source,
            [row for person in people for row in source.export(person)],
            why_held(source, policy),
        )
        for source in ordered
    ]


def categories_of(sections: list[Section], policy: Policy) -> list[Category]:
    """The sections with records, grouped by why they are held: the sources of one record kind
    share the policy's purposes, so the reason is said once; the others each say their own."""
    categories: dict[str, Category] = {}
    for section in sections:
        if not section.rows:
            continue
        kind = section.source.record_kind
        key = kind or f"source:{section.source.name}"
        if key not in categories:
            titles = [p["purpose"] for p in section.why["purposes"]]
            if kind is None:
                title = section.source.heading
            elif titles:
                title = " and ".join(titles)
            else:
                title = RECORD_KINDS[kind].label if kind in RECORD_KINDS else kind
            why = dict(section.why)
            if kind is not None:
                why["about"] = ""  # each source's own sentence goes with its records
            categories[key] = Category(key, title, why)
        categories[key].sections.append(section)
    return list(categories.values())


def build_package(contact: Any, *, reference: str = "") -> bytes:
    """The ZIP file of everything held about ``contact`` (None: an address we hold nothing
    about; the package then says so, with the policy's part)."""
    policy = get_policy()
    generated = timezone.now()
    sections = sections_for(contact)
    rights = rights_section(policy)
    data = {
        "generated_at": generated.isoformat(),
        "reference": reference,
        "controller": rights["controller"],
        "policy_version": policy.version,
        "data": {
            s.source.name: {"title": s.source.heading, **s.why, "records": s.rows} for s in sections
        },
        "your_rights": rights,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "summary.html",
            render_to_string(
                "rights/package/summary.html",
                {
                    "categories": categories_of(sections, policy),
                    "rights": rights,
                    "generated": time_in_words(generated),
                    "time_zone": settings.TIME_ZONE,
                    "reference": reference,
                    "policy": policy,
                    "files": [f"{s.source.name}.csv" for s in sections if s.rows],
                },
            ),
        )
        archive.writestr("data.json", json.dumps(data, indent=2, ensure_ascii=False, default=str))
        for section in sections:
            if not section.rows:
                continue
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(section.columns)
            for row in section.table:
                writer.writerow(safe_row(row))
            archive.writestr(f"{section.source.name}.csv", "\ufeff" + out.getvalue())
    return buffer.getvalue()
