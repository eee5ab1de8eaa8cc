"""The public privacy notice, shaped from the policy: what ``/privacy`` and ``/privacy.json`` show.

Everything here is derived from a ``Policy``; nothing names the example company.  ``build_notice``
gives the HTML page its sections as plain values (the template only lays them out), and
``notice_data`` gives machines the policy itself plus the same derived wording.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils.text import slugify

from .plain import field_label, fields_text, lawful_basis_text, retention_notes, retention_text
from .records import RECORD_KINDS
from .schema import SENSITIVE_TEXT, Controller, Cookie, Policy, Processor, Purpose

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# The rights a person has under the UK GDPR / GDPR, in the order the notice lists them.  Each is
# (name, what it lets you do); the notice adds how to use them from the policy's [rights].
RIGHTS: tuple[tuple[str, str], ...] = (
    ("Access", "You can ask for a copy of the personal information we hold about you."),
    ("Rectification", "You can ask us to correct information that is wrong or incomplete."),
    (
        "Erasure",
        "You can ask us to delete your information, unless the law requires us to keep it.",
    ),
    (
        "Restriction",
        "You can ask us to stop using your information, while keeping it, for example while "
        "you challenge its accuracy.",
    ),
    (
        "Portability",
        "You can ask for the information you gave us, in a machine-readable format, or ask "
        "us to send it to another organisation, where we use it by consent or contract.",
    ),
    (
        "Objection",
        "You can object to our use of your information for our legitimate interests, and to "
        "direct marketing at any time.",
    ),
    (
        "Withdrawing consent",
        "Where we rely on your consent, you can withdraw it at any time; this does not affect "
        "what we did before you withdrew it.",
    ),
    (
        "Complaint",
        "You can complain to the supervisory authority about how we use your information.",
    ),
)


# Where personal data comes from beyond what the policy lists, as the installation's own records
# show it (a list imported from an earlier newsletter tool): {purpose: (source, ...)}.  Apps
# register a provider (the policy layer cannot look into their records); the notice's views ask
# them at each build, so the notice says so from the moment the records exist.
SourceProvider = Callable[[], Mapping[str, tuple[str, ...]]]
_source_providers: list[SourceProvider] = []


def register_source_provider(provider: SourceProvider) -> None:
    if provider not in _source_providers:
        _source_providers.append(provider)


def recorded_sources() -> dict[str, tuple[str, ...]]:
    """The sources every registered provider reports, per purpose (needs the database)."""
    merged: dict[str, tuple[str, ...]] = {}
    for provider in _source_providers:
        for purpose, sources in provider().items():
            merged[purpose] = merged.get(purpose, ()) + tuple(sources)
    return merged


def updated_date(version: str) -> tuple[str, str] | None:
    """("2020-09-23", "23 September 2020") when the version is an ISO date, else None."""
    try:
        day = date.fromisoformat(version.strip())
    except ValueError:
        return None
    return day.isoformat(), f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def rights_request_url() -> str | None:
    """The rights request form, when an installed app provides one (URL name "rights:request")."""
    try:
        return reverse("rights:request")
    except NoReverseMatch:
        return None


def link_url(value: str | None) -> str | None:
    """The value when it is an http(s) URL, else None: only web links become ``href``s."""
    if value and value.strip().lower().startswith(("https://", "http://")):
        return value.strip()
    return None


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class FieldRow:
    name: str
    label: str
    category: str  # the category's label, "" for a field no category lists (the loader forbids it)
    required: bool


@dataclass(frozen=True)
class ProcessorRow:
    key: str
    name: str
    role: str
    country: str  # ISO 3166 alpha-2
    country_name: str
    international: bool
    safeguard: str | None
    terms_url: str | None

    @classmethod
    def of(cls, key: str, processor: Processor) -> ProcessorRow:
        return cls(
            key=key,
            name=processor.name,
            role=processor.role,
            country=processor.location,
            country_name=processor.location_name,
            international=processor.is_international_transfer,
            safeguard=processor.transfer_safeguard,
            terms_url=link_url(processor.terms_url),
        )


@dataclass(frozen=True)
class RetentionRow:
    kind: str
    anchor: str
    label: str
    text: str
    notes: tuple[str, ...]
    minimum: bool


@dataclass(frozen=True)
class PurposeSection:
    key: str
    anchor: str
    title: str
    description: str | None
    basis: str  # "Consent"
    basis_text: str  # "you asked for it, and you can withdraw your consent at any time"
    legitimate_interest: str | None
    fields: tuple[FieldRow, ...]
    sources: tuple[str, ...]
    processors: tuple[ProcessorRow, ...]
    tracking: str | None
    tracking_needs_consent: bool
    double_opt_in: bool
    identifying: bool
    retention: RetentionRow

    @property
    def fields_text(self) -> str:
        """The fields as a phrase: "pages visited and user agent"."""
        return fields_text(tuple(f.name for f in self.fields))


@dataclass(frozen=True)
class CookieRow:
    name: str
    purpose: str  # what it is for, as a sentence
    party: str  # "First party (us)" / "Third party (<provider>)"
    duration: str  # "12 months", "Until you close your browser"
    strictly_necessary: bool
    consent_title: str | None  # the purpose the banner asks consent for
    consent_anchor: str | None


@dataclass(frozen=True)
class Analytics:
    """What the notice says about website statistics: the purposes that keep page views."""

    purposes: tuple[PurposeSection, ...]


@dataclass(frozen=True)
class Notice:
    policy: Policy
    updated: tuple[str, str] | None  # (ISO date, "23 September 2020"), or None
    purposes: tuple[PurposeSection, ...]
    processors: tuple[ProcessorRow, ...]
    retention: tuple[RetentionRow, ...]
    sensitive: tuple[str, ...]  # plain-English names of the special categories
    analytics: Analytics
    cookies: tuple[CookieRow, ...]
    rights: tuple[tuple[str, str], ...]
    rights_url: str | None
    minimum_kinds: tuple[str, ...]  # labels of records kept for a legal minimum

    @property
    def controller(self) -> Controller:
        return self.policy.controller

    @property
    def has_cookie_banner(self) -> bool:
        """The website asks consent (the banner) for some cookie or for statistics."""
        return bool(self.policy.consent_purposes_on_website())

    @property
    def website_url(self) -> str | None:
        return link_url(self.controller.website)

    @property
    def authority_url(self) -> str | None:
        return link_url(self.controller.supervisory_authority.url)

    @property
    def phone_href(self) -> str:
        return "tel:" + "".join(
            ch for ch in self.controller.phone or "" if ch.isdigit() or ch == "+"
        )

    @property
    def transfers(self) -> tuple[ProcessorRow, ...]:
        return tuple(p for p in self.processors if p.international)

    @property
    def tracking_purposes(self) -> tuple[PurposeSection, ...]:
        return tuple(p for p in self.purposes if p.tracking)

    @property
    def contents(self) -> list[tuple[str, str]]:
        """(anchor, heading) of each h2, for the table of contents."""
        return [
            ("who-we-are", "Who we are"),
            ("what-we-collect", "What we collect and why"),
            ("sharing", "Who we share it with"),
            ("retention", "How long we keep it"),
            ("sensitive", "Sensitive information"),
            ("marketing", "Marketing and your consent"),
            ("cookies", "Cookies and website statistics"),
            ("rights", "Your rights"),
        ]


def _retention_row(policy: Policy, kind: str) -> RetentionRow:
    return RetentionRow(
        kind=kind,
        anchor=f"keep-{slugify(kind)}",
        label=RECORD_KINDS[kind].label,
        text=_sentence(retention_text(policy, kind)),
        notes=tuple(retention_notes(policy, kind)),
        minimum=policy.retention_for(kind).minimum,
    )


def _purpose_section(
    policy: Policy,
    key: str,
    purpose: Purpose,
    processors: dict[str, ProcessorRow],
    recorded: Mapping[str, tuple[str, ...]],
) -> PurposeSection:
    basis, basis_text = lawful_basis_text(purpose.lawful_basis)
    fields = tuple(
        FieldRow(
            name=name,
            label=_sentence(field_label(name)),
            category=field_label(policy.category_of(name) or ""),
            required=name in purpose.collects.required,
        )
        for name in purpose.collects.all
    )
    return PurposeSection(
        key=key,
        anchor=f"purpose-{slugify(key)}",
        title=purpose.title,
        description=purpose.description,
        basis=basis,
        basis_text=basis_text,
        legitimate_interest=purpose.legitimate_interest,
        fields=fields,
        sources=_with_recorded(purpose.sources, recorded.get(key, ())),
        processors=tuple(processors[p] for p in purpose.processors),
        tracking=purpose.tracking,
        tracking_needs_consent=purpose.tracking_needs_consent,
        double_opt_in=purpose.double_opt_in,
        identifying=purpose.identifying,
        retention=_retention_row(policy, purpose.record),
    )


def _cookie_row(policy: Policy, cookie: Cookie) -> CookieRow:
    consent = policy.purposes.get(cookie.consent_purpose or "")
    return CookieRow(
        name=cookie.name,
        purpose=_sentence(cookie.purpose).rstrip(".") + ".",
        party=f"Third party ({cookie.provider})" if cookie.party == "third" else "First party (us)",
        duration="Until you close your browser"
        if cookie.lifetime is None
        else str(cookie.lifetime),
        strictly_necessary=cookie.strictly_necessary,
        consent_title=consent.title if consent else None,
        consent_anchor=f"purpose-{slugify(cookie.consent_purpose or '')}" if consent else None,
    )


def _own_cookies() -> tuple[CookieRow, ...]:
    """The cookie tidings' own public pages set whatever the policy says: Django's CSRF token,
    on the pages that carry a form of ours (contact, demo booking, rights requests, email
    preferences and confirmation).  Strictly necessary, so no consent is asked, but the notice
    must not say the website uses no cookies."""
    from django.conf import settings

    age = settings.CSRF_COOKIE_AGE
    days = round(age / 86400) if age else 0
    duration = (
        "Until you close your browser"
        if not age
        else "1 year"
        if 364 <= days <= 366
        else f"{days} day{'s' if days != 1 else ''}"
    )
    return (
        CookieRow(
            name=settings.CSRF_COOKIE_NAME,
            purpose="Set by our pages that carry a form (contact, rights requests, your email "
            "preferences): it stops another website from sending those forms in your name.",
            party="First party (us)",
            duration=duration,
            strictly_necessary=True,
            consent_title=None,
            consent_anchor=None,
        ),
    )


def _with_recorded(sources: tuple[str, ...], recorded: tuple[str, ...]) -> tuple[str, ...]:
    return sources + tuple(s for s in dict.fromkeys(recorded) if s not in sources)


def build_notice(policy: Policy, recorded: Mapping[str, tuple[str, ...]] | None = None) -> Notice:
    """The notice's sections.  ``recorded`` adds, per purpose, the sources of data that the
    installation's records show beyond the policy's list (see recorded_sources())."""
    recorded = recorded or {}
    processors = {key: ProcessorRow.of(key, p) for key, p in policy.processors.items()}
    purposes = tuple(
        _purpose_section(policy, key, purpose, processors, recorded)
        for key, purpose in policy.purposes.items()
    )
    retention = tuple(_retention_row(policy, kind) for kind in policy.retention)
    return Notice(
        policy=policy,
        updated=updated_date(policy.version),
        purposes=purposes,
        processors=tuple(processors.values()),
        retention=retention,
        sensitive=tuple(SENSITIVE_TEXT[c] for c in policy.sensitive.categories),
        analytics=Analytics(tuple(p for p in purposes if p.retention.kind == "page_view")),
        cookies=tuple(_cookie_row(policy, c) for c in policy.cookies)
        + tuple(c for c in _own_cookies() if policy.cookie(c.name) is None),
        rights=RIGHTS,
        rights_url=rights_request_url(),
        minimum_kinds=tuple(row.label for row in retention if row.minimum),
    )


def notice_data(
    policy: Policy, recorded: Mapping[str, tuple[str, ...]] | None = None
) -> dict[str, Any]:
    """The policy as JSON-ready data, plus the derived wording the HTML notice uses.

    The policy's own keys are ``model_dump(mode="json")`` unchanged; added to them:
    ``sha256`` (of the policy file), ``updated`` (ISO date or null), ``processors.*.location_name``
    and ``.international_transfer``, ``purposes.*.lawful_basis_text``,
    ``purposes.*.recorded_sources`` (sources the installation's records add, see build_notice),
    ``retention.*.label`` / ``.text`` / ``.notes``, ``sensitive.labels``, and ``own_cookies``
    (the cookie tidings' own pages set, which the policy need not list).
    """
    recorded = recorded or {}
    data = policy.model_dump(mode="json")
    updated = updated_date(policy.version)
    data["sha256"] = policy.sha256
    data["updated"] = updated[0] if updated else None
    for key, processor in policy.processors.items():
        data["processors"][key]["location_name"] = processor.location_name
        data["processors"][key]["international_transfer"] = processor.is_international_transfer
    for key, purpose in policy.purposes.items():
        data["purposes"][key]["lawful_basis_text"] = lawful_basis_text(purpose.lawful_basis)[1]
        data["purposes"][key]["recorded_sources"] = [
            s for s in _with_recorded((), recorded.get(key, ())) if s not in purpose.sources
        ]
    for kind in policy.retention:
        data["retention"][kind]["label"] = RECORD_KINDS[kind].label
        data["retention"][kind]["text"] = retention_text(policy, kind)
        data["retention"][kind]["notes"] = retention_notes(policy, kind)
    data["sensitive"]["labels"] = [SENSITIVE_TEXT[c] for c in policy.sensitive.categories]
    data["own_cookies"] = [
        {"name": c.name, "purpose": c.purpose, "duration": c.duration, "strictly_necessary": True}
        for c in _own_cookies()
        if policy.cookie(c.name) is None
    ]
    return data
