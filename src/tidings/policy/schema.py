"""The schema of policy.toml, as immutable pydantic models, and the ``Policy`` API.

The models check each value on its own (types, allowed words, periods); ``loader.check_references``
then checks the file as a whole (a purpose's fields and processors exist, every record kind has a
retention rule...).  Other apps use only the methods of ``Policy``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Annotated, Any, Literal

import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    field_serializer,
)

from .durations import Duration, Moment, start_of
from .records import RECORD_KINDS, RecordKind

LawfulBasis = Literal[
    "consent",
    "contract",
    "legal_obligation",
    "legitimate_interests",
    "vital_interests",
    "public_task",
]
LAWFUL_BASIS_TEXT: dict[str, tuple[str, str]] = {
    # basis -> (short name, plain-English explanation for the notice)
    "consent": ("Consent", "you asked for it, and you can withdraw your consent at any time"),
    "contract": ("Contract", "we need it to perform a contract with you or your employer"),
    "legal_obligation": ("Legal obligation", "the law requires us to keep it"),
    "legitimate_interests": (
        "Legitimate interests",
        "we have a legitimate interest in it that does not override your rights; "
        "you may object at any time",
    ),
    "vital_interests": ("Vital interests", "it is needed to protect someone's life"),
    "public_task": ("Public task", "it is needed for a task in the public interest"),
}

# GDPR Art. 9 special categories, plus criminal offence data (Art. 10).
SensitiveCategory = Literal[
    "racial_or_ethnic_origin",
    "political_opinions",
    "religious_or_philosophical_beliefs",
    "trade_union_membership",
    "genetic",
    "biometric",
    "health",
    "sex_life_or_orientation",
    "criminal_history",
]
SENSITIVE_TEXT: dict[str, str] = {
    "racial_or_ethnic_origin": "racial or ethnic origin",
    "political_opinions": "political opinions",
    "religious_or_philosophical_beliefs": "religious or philosophical beliefs",
    "trade_union_membership": "trade union membership",
    "genetic": "genetic data",
    "biometric": "biometric data",
    "health": "health",
    "sex_life_or_orientation": "sex life or sexual orientation",
    "criminal_history": "criminal convictions and offences",
}

# Countries a UK or EEA controller may send personal data to without extra safeguards: the UK,
# the EEA, and the places with a UK adequacy regulation.  Anywhere else needs a transfer safeguard.
ADEQUATE_COUNTRIES = frozenset(
    {
        "GB",
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "IS",
        "LI",
        "NO",
        "AD",
        "AR",
        "CA",
        "CH",
        "FO",
        "GG",
        "GI",
        "IL",
        "IM",
        "JE",
        "JP",
        "KR",
        "NZ",
        "UY",
    }
)


def _country(value: str) -> str:
    code = value.strip().upper()
    if code == "UK":
        code = "GB"
    if pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f'"{value}" is not a country: use a two-letter code such as GB, US, DE')
    return code


def country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return getattr(country, "common_name", None) or country.name if country else code


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f'"{value}" is listed twice')
        seen.add(value)
    return values


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _no_control_characters(value: str) -> str:
    """Text is shown on pages and put into mail: no NUL or other control characters (a line
    break or tab is allowed, in the longer texts a multi-line TOML string may hold)."""
    bad = next((c for c in value if unicodedata.category(c) == "Cc" and c not in "\n\t"), None)
    if bad is not None:
        raise ValueError(f"must not contain the control character U+{ord(bad):04X}")
    return value


def _one_line(value: str) -> str:
    """Names and titles go into email headers (a sender's name, a subject): one line."""
    if "\n" in value or "\t" in value:
        raise ValueError("must be one line (no line break or tab)")
    return value


def _http_url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f'"{value}" is not a web address: write it as https://...')
    return value.strip()


def _date_as_written(value: Any) -> Any:
    """``version = 2026-11-01`` without quotes is a TOML date: the same version as the string."""
    return value.isoformat() if isinstance(value, date | time) else value


Country = Annotated[str, AfterValidator(_country)]
WebAddress = Annotated[str, AfterValidator(_http_url)]
Text = Annotated[str, AfterValidator(_non_blank), AfterValidator(_no_control_characters)]
Line = Annotated[Text, AfterValidator(_one_line)]
Names = Annotated[tuple[str, ...], AfterValidator(_unique)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Authority(Model):
    name: Line
    url: WebAddress


class Controller(Model):
    name: Line
    address: Text
    email: EmailStr
    phone: str | None = None
    website: WebAddress | None = None
    country: Country = "GB"
    supervisory_authority: Authority
    dpo: str | None = None  # data protection officer, when there is one


class Sensitive(Model):
    categories: Annotated[tuple[SensitiveCategory, ...], AfterValidator(_unique)] = ()
    on_detect: Literal["redact", "reject"] = "redact"


class Processor(Model):
    name: Line
    role: Text
    location: Country
    transfer_safeguard: str | None = None
    terms_url: WebAddress | None = None

    @property
    def location_name(self) -> str:
        return country_name(self.location)

    @property
    def is_international_transfer(self) -> bool:
        return self.location not in ADEQUATE_COUNTRIES


class Collects(Model):
    required: Names = ()
    optional: Names = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.required + self.optional


class Purpose(Model):
    title: Line
    lawful_basis: LawfulBasis
    collects: Collects = Collects()
    sources: Names = ()
    processors: Names = ()
    record: Text
    description: str | None = None
    legitimate_interest: str | None = None  # what the interest is, for legitimate_interests
    tracking: str | None = None  # what open/click tracking is for, when the purpose tracks
    # True: a person's emails are tracked only after they allowed it (opt-in); False: unless
    # they refused it (opt-out).  Either way the preference centre offers the choice.
    tracking_needs_consent: bool = False
    double_opt_in: bool = False
    identifying: bool = True


class Marketing(Model):
    channels: Annotated[
        tuple[Literal["email", "phone", "post", "sms"], ...], AfterValidator(_unique)
    ]
    topics: Names = ()


def _parse_after(value: Any) -> tuple[str, tuple[str, ...]] | None:
    """``after`` is a clock name, ``{first_of = [...]}`` or ``{last_of = [...]}``."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must name a clock")
        return ("first", (value.strip(),))
    if isinstance(value, Mapping) and len(value) == 1:
        ((key, names),) = value.items()
        if key in {"first_of", "last_of"}:
            if (
                not isinstance(names, list)
                or len(names) < 2
                or not all(isinstance(n, str) and n.strip() for n in names)
            ):
                raise ValueError(f"{key} takes a list of two or more clock names")
            _unique(tuple(names))
            return (key.removesuffix("_of"), tuple(n.strip() for n in names))
    raise ValueError(
        'expected a clock name ("created") or { first_of = [...] } / { last_of = [...] }'
    )


def _parse_keep(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError('expected a period such as "12 months", or "while subscribed"')
    text = " ".join(value.lower().split())
    if not text.startswith("while "):
        Duration.parse(text)  # raises a ValueError that says what is wrong
    return text


class RetentionRule(Model):
    keep: Annotated[str, BeforeValidator(_parse_keep)]
    after: Annotated[
        tuple[Literal["first", "last"], tuple[str, ...]] | None, BeforeValidator(_parse_after)
    ] = None
    minimum: bool = False  # a legal minimum: erasure requests cannot remove the record earlier
    extendable_on_request: bool = False
    on_end: Literal["erase", "anonymise"] = "erase"

    @field_serializer("after")
    def _after_as_written(
        self, after: tuple[str, tuple[str, ...]] | None
    ) -> str | dict[str, list[str]] | None:  # JSON shows the file's own shape, not the parsed tuple
        if after is None:
            return None
        combine, names = after
        return names[0] if len(names) == 1 else {f"{combine}_of": list(names)}

    @property
    def while_state(self) -> str | None:
        return self.keep.removeprefix("while ") if self.keep.startswith("while ") else None

    @property
    def duration(self) -> Duration | None:
        return None if self.while_state else Duration.parse(self.keep)

    def clock_names(self, kind: RecordKind) -> tuple[str, ...]:
        if self.while_state:
            return kind.while_states.get(self.while_state, ())
        return self.after[1] if self.after else ()

    def combine(self) -> Literal["first", "last"]:
        return "first" if self.while_state or not self.after else self.after[0]


def _cookie_duration(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError('expected a period such as "12 months", or "session"')
    text = " ".join(value.lower().split())
    if text != "session":
        try:
            Duration.parse(text)
        except ValueError:
            raise ValueError(
                f'"{value}" is not a cookie lifetime: write "session" (deleted when the browser '
                'closes) or a period such as "12 months"'
            ) from None
    return text


def _cookie_name(value: str) -> str:
    # RFC 6265 cookie-name: a token (no separators, spaces or control characters).
    import re

    if not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", value):
        raise ValueError(f'"{value}" is not a cookie name: use letters, digits, "_" or "-"')
    return value


# The one cookie the consent banner sets: the visitor's choice (tidings.analytics' banner.js).
CONSENT_COOKIE = "tidings_consent"


class Cookie(Model):
    """One cookie the website sets or lets a third party set (``[[cookies]]``).

    ``purpose`` is what it is for, in words for the notice and the banner.  A cookie that is not
    ``strictly_necessary`` needs the visitor's consent before it is set, so it names the policy
    purpose (lawful basis "consent") the banner asks about: ``consent_purpose``.
    """

    name: Annotated[str, AfterValidator(_non_blank), AfterValidator(_cookie_name)]
    purpose: Text
    party: Literal["first", "third"]
    duration: Annotated[str, BeforeValidator(_cookie_duration)]
    strictly_necessary: bool
    consent_purpose: str | None = None
    provider: str | None = None  # who sets a third-party cookie

    @property
    def lifetime(self) -> Duration | None:
        """The period it lasts; None for a session cookie."""
        return None if self.duration == "session" else Duration.parse(self.duration)


class Rights(Model):
    contact: EmailStr
    response_days: int = Field(30, ge=1, le=31)
    extension_days: int = Field(60, ge=0, le=62)
    verify_identity: bool = True


@dataclass(frozen=True)
class FieldSet:
    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return self.required + self.optional


class Policy(Model):
    """A validated privacy policy.  Load it with ``tidings.policy.load_policy``."""

    version: Annotated[Text, BeforeValidator(_date_as_written)]
    controller: Controller
    categories: dict[str, Names]
    sensitive: Sensitive = Sensitive()
    processors: dict[str, Processor] = {}
    purposes: dict[str, Purpose]
    marketing: Marketing
    retention: dict[str, RetentionRule]
    rights: Rights
    cookies: tuple[Cookie, ...] = ()

    # Set by the loader: where the policy came from and the SHA-256 of its bytes.
    source: str = Field("", exclude=True)
    sha256: str = Field("", exclude=True)

    # --- the API the other apps use ----------------------------------------------------------
    def purpose(self, purpose: str) -> Purpose:
        try:
            return self.purposes[purpose]
        except KeyError:
            raise KeyError(f'the policy has no purpose "{purpose}"') from None

    def fields_for(self, purpose: str) -> FieldSet:
        """The fields a purpose may collect: required ones, then optional ones."""
        collects = self.purpose(purpose).collects
        return FieldSet(collects.required, collects.optional)

    def processors_for(self, purpose: str) -> list[Processor]:
        return [self.processors[key] for key in self.purpose(purpose).processors]

    def retention_for(self, record_kind: str) -> RetentionRule:
        try:
            return self.retention[record_kind]
        except KeyError:
            raise KeyError(f'the policy has no retention rule for "{record_kind}"') from None

    def is_legal_minimum(self, record_kind: str) -> bool:
        return self.retention_for(record_kind).minimum

    def expires_at(self, record_kind: str, clocks: Mapping[str, Moment | None]) -> Moment | None:
        """When a record of this kind expires, given its clocks; None while no clock has started.

        ``clocks`` maps clock names to dates or aware datetimes (None for an event that has not
        happened).  ``first_of`` runs from the earliest started clock, ``last_of`` once all have
        started; "while subscribed" expires the moment the state ends.
        """
        rule = self.retention_for(record_kind)
        kind = RECORD_KINDS[record_kind]
        start = start_of(clocks, rule.clock_names(kind), rule.combine())
        if start is None:
            return None
        duration = rule.duration
        return duration.after(start) if duration else start

    def purposes_for_record(self, record_kind: str) -> list[str]:
        return [key for key, p in self.purposes.items() if p.record == record_kind]

    def category_of(self, field: str) -> str | None:
        for category, fields in self.categories.items():
            if field in fields:
                return category
        return None

    def consent_purposes_on_website(self) -> list[str]:
        """The purposes the website's consent banner asks about, in policy order.

        Those that need consent (lawful basis "consent") and either set a cookie that is not
        strictly necessary or keep website statistics (``page_view`` records).  Marketing consent
        is asked on its own forms, never in the banner.
        """
        cookie_purposes = {c.consent_purpose for c in self.cookies if not c.strictly_necessary} - {
            None
        }
        return [
            key
            for key, p in self.purposes.items()
            if p.lawful_basis == "consent" and (key in cookie_purposes or p.record == "page_view")
        ]

    def cookie(self, name: str) -> Cookie | None:
        return next((c for c in self.cookies if c.name == name), None)

    @property
    def all_fields(self) -> tuple[str, ...]:
        return tuple(f for fields in self.categories.values() for f in fields)
