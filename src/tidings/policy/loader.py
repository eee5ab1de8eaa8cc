"""Read policy.toml, validate it, report every problem with the file, the key and what is wrong."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .records import RECORD_KINDS
from .schema import CONSENT_COOKIE, SENSITIVE_TEXT, Policy


@dataclass(frozen=True)
class Problem:
    path: str  # "purposes.newsletter.collects.required[2]"
    message: str


class PolicyError(Exception):
    """A policy file that cannot be used.  ``str()`` gives one line per problem."""

    def __init__(self, file: str, problems: list[Problem]):
        self.file = file
        self.problems = problems
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [
            f"{self.file}: {p.path}: {p.message}" if p.path else f"{self.file}: {p.message}"
            for p in self.problems
        ]


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _as_toml(value: Any) -> str:
    """A value as the file wrote it (TOML), not as Python shows it: "name", ["a"], true."""
    if isinstance(value, date | time):
        return value.isoformat()
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:  # a table nested in itself cannot come from TOML; be safe anyway
        return repr(value)


# What a value of the wrong type should have been, in the words of TOML.
_EXPECTED = {
    "string_type": "expected text in quotes",
    "tuple_type": 'expected a list, such as ["a", "b"]',
    "list_type": 'expected a list, such as ["a", "b"]',
    "dict_type": "expected a table, such as { key = value } or a [section]",
    "model_type": "expected a table, such as { key = value } or a [section]",
    "model_attributes_type": "expected a table, such as { key = value } or a [section]",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
}


def _message(error: Any) -> tuple[tuple[Any, ...], str]:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return loc[:-1], f'unknown key "{loc[-1]}"'
    if kind == "missing":
        return loc[:-1], f'missing key "{loc[-1]}"'
    if kind in _EXPECTED:
        return loc, f"{_EXPECTED[kind]}, got {_as_toml(error['input'])}"
    msg = error["msg"].removeprefix("Value error, ")
    if kind in {
        "literal_error",
        "string_type",
        "int_parsing",
        "bool_parsing",
        "bool_type",
        "tuple_type",
        "dict_type",
        "int_type",
        "greater_than_equal",
        "less_than_equal",
    }:
        msg = f"{msg[0].lower()}{msg[1:]}, got {_as_toml(error['input'])}"
    elif kind == "value_error" and "email address" in msg:
        msg = f"not a valid email address ({msg})"
    return loc, msg


def parse_policy(text: str, file: str = "policy.toml") -> Policy:
    """Validate a policy from its TOML text; raise PolicyError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(file, [Problem("", f"not valid TOML: {exc}")]) from None
    except RecursionError:  # arrays or tables nested thousands deep exhaust the parser
        raise PolicyError(file, [Problem("", "not valid TOML: nested too deeply")]) from None
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc, msg = _message(error)
            problems.append(Problem(_path(loc), msg))
        raise PolicyError(file, problems) from None
    problems = check_references(policy)
    if problems:
        raise PolicyError(file, problems)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return policy.model_copy(update={"source": file, "sha256": digest})


def load_policy(path: str | Path) -> Policy:
    path = Path(path)
    try:
        # utf-8-sig: an editor that saves "UTF-8 with BOM" (Windows Notepad) puts U+FEFF first
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PolicyError(str(path), [Problem("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(path), [Problem("", f"cannot read the file: {exc}")]) from None
    return parse_policy(text, str(path))


def check_references(policy: Policy) -> list[Problem]:
    """Checks across the file: names that must point at something defined elsewhere in it."""
    problems: list[Problem] = []
    add = problems.append
    field_home: dict[str, str] = {}
    for category, fields in policy.categories.items():
        if not fields:
            add(Problem(f"categories.{category}", "a category must list at least one field"))
        for i, field in enumerate(fields):
            if field in field_home:
                add(
                    Problem(
                        f"categories.{category}[{i}]",
                        f'field "{field}" is already in category "{field_home[field]}"',
                    )
                )
            field_home.setdefault(field, category)
        for i, field in enumerate(fields):
            if field in SENSITIVE_TEXT:
                add(
                    Problem(
                        f"categories.{category}[{i}]",
                        f'"{field}" is a special category (GDPR Art. 9/10): tidings never asks '
                        "for it or keeps it, so it cannot be a field",
                    )
                )
        if category in policy.sensitive.categories:
            add(
                Problem(
                    f"categories.{category}",
                    "a special category (sensitive) cannot be an ordinary data category",
                )
            )
    if "email" not in field_home:
        add(Problem("categories", 'no category lists the "email" field, which tidings needs'))

    for key, processor in policy.processors.items():
        if processor.is_international_transfer and not processor.transfer_safeguard:
            add(Problem(f"processors.{key}.transfer_safeguard", _missing_safeguard(processor)))

    records_seen: dict[str, str] = {}
    for key, purpose in policy.purposes.items():
        where = f"purposes.{key}"
        for group in ("required", "optional"):
            for i, field in enumerate(getattr(purpose.collects, group)):
                if field not in field_home:
                    add(
                        Problem(
                            f"{where}.collects.{group}[{i}]",
                            f'unknown field "{field}" — not in any category',
                        )
                    )
        for field in set(purpose.collects.required) & set(purpose.collects.optional):
            add(Problem(f"{where}.collects", f'field "{field}" is both required and optional'))
        for i, processor_key in enumerate(purpose.processors):
            if processor_key not in policy.processors:
                known = ", ".join(policy.processors) or "none are defined"
                add(
                    Problem(
                        f"{where}.processors[{i}]",
                        f'unknown processor "{processor_key}" (known: {known})',
                    )
                )
        if purpose.record not in RECORD_KINDS:
            add(
                Problem(
                    f"{where}.record",
                    f'unknown record kind "{purpose.record}" '
                    f"(tidings keeps: {', '.join(RECORD_KINDS)})",
                )
            )
        elif purpose.record not in policy.retention:
            add(
                Problem(
                    f"{where}.record",
                    f'record kind "{purpose.record}" has no retention rule '
                    f"(add [retention.{purpose.record}])",
                )
            )
        elif RECORD_KINDS[purpose.record].purpose_key not in {"", key}:
            expected = RECORD_KINDS[purpose.record].purpose_key
            add(
                Problem(
                    f"{where}.record",
                    f'tidings keeps {purpose.record} records for the purpose named "{expected}": '
                    f"call this purpose [purposes.{expected}] (its title can say anything)",
                )
            )
        elif purpose.record in records_seen:
            add(
                Problem(
                    f"{where}.record",
                    f'record kind "{purpose.record}" already belongs to purpose '
                    f'"{records_seen[purpose.record]}"',
                )
            )
        records_seen.setdefault(purpose.record, key)
        owned = next((k for k in RECORD_KINDS.values() if k.purpose_key == key), None)
        if owned is not None and purpose.record in RECORD_KINDS and purpose.record != owned.key:
            add(
                Problem(
                    f"{where}.record",
                    f'the purpose "{key}" creates {owned.key} records in tidings, '
                    f'not "{purpose.record}": write record = "{owned.key}"',
                )
            )
        if purpose.lawful_basis == "legitimate_interests" and purpose.legitimate_interest == "":
            add(Problem(f"{where}.legitimate_interest", "must not be empty"))
        if purpose.double_opt_in and "email" not in purpose.collects.required:
            add(Problem(f"{where}.double_opt_in", 'double opt-in needs "email" to be required'))
    if "newsletter" in policy.purposes and policy.purposes["newsletter"].lawful_basis != "consent":
        add(
            Problem(
                "purposes.newsletter.lawful_basis",
                'marketing email needs consent: the newsletter\'s basis must be "consent"',
            )
        )

    problems.extend(check_cookies(policy))

    for kind_key, rule in policy.retention.items():
        where = f"retention.{kind_key}"
        kind = RECORD_KINDS.get(kind_key)
        if kind is None:
            add(
                Problem(
                    where,
                    f'unknown record kind "{kind_key}" (tidings keeps: {", ".join(RECORD_KINDS)})',
                )
            )
            continue
        if rule.while_state:
            if rule.while_state not in kind.while_states:
                states = ", ".join(f'"while {s}"' for s in kind.while_states) or "none"
                add(
                    Problem(
                        f"{where}.keep",
                        f'"{rule.keep}" does not apply to {kind_key} records '
                        f"(they allow: {states}, or a period)",
                    )
                )
            if rule.after is not None:
                add(
                    Problem(
                        f"{where}.after", f'"{rule.keep}" runs until the state ends: remove after'
                    )
                )
            continue
        if rule.after is None:
            add(
                Problem(
                    f"{where}.after",
                    f'missing: "{rule.keep}" after which clock? '
                    f"({kind_key} records have: {', '.join(kind.clocks)})",
                )
            )
            continue
        for name in rule.after[1]:
            if name not in kind.clocks:
                add(
                    Problem(
                        f"{where}.after",
                        f'unknown clock "{name}" — {kind_key} records have: '
                        f"{', '.join(kind.clocks)}",
                    )
                )
    return problems


def check_cookies(policy: Policy) -> list[Problem]:
    """A cookie that is not strictly necessary needs consent for a consent-based purpose; the
    banner's own cookie must be listed whenever the banner has anything to ask."""
    problems: list[Problem] = []
    add = problems.append
    seen: set[str] = set()
    for i, cookie in enumerate(policy.cookies):
        where = f"cookies[{i}]"
        if cookie.name in seen:
            add(Problem(f"{where}.name", f'cookie "{cookie.name}" is listed twice'))
        seen.add(cookie.name)
        if cookie.party == "third" and not cookie.provider:
            add(Problem(f"{where}.provider", "a third-party cookie must say who sets it"))
        if cookie.strictly_necessary:
            if cookie.consent_purpose is not None:
                add(
                    Problem(
                        f"{where}.consent_purpose",
                        "a strictly necessary cookie needs no consent: remove consent_purpose",
                    )
                )
            continue
        if cookie.consent_purpose is None:
            add(
                Problem(
                    f"{where}.consent_purpose",
                    "a cookie that is not strictly necessary needs consent: name the purpose "
                    "the banner asks about",
                )
            )
        elif cookie.consent_purpose not in policy.purposes:
            add(
                Problem(
                    f"{where}.consent_purpose",
                    f'unknown purpose "{cookie.consent_purpose}" '
                    f"(known: {', '.join(policy.purposes)})",
                )
            )
        elif policy.purposes[cookie.consent_purpose].lawful_basis != "consent":
            add(
                Problem(
                    f"{where}.consent_purpose",
                    f'purpose "{cookie.consent_purpose}" is not consent-based: a cookie that is '
                    'not strictly necessary needs a purpose whose lawful_basis is "consent"',
                )
            )
    if policy.consent_purposes_on_website():
        own = policy.cookie(CONSENT_COOKIE)
        if own is None or not own.strictly_necessary or own.party != "first":
            add(
                Problem(
                    "cookies",
                    f'the consent banner keeps the visitor\'s choice in the "{CONSENT_COOKIE}" '
                    "cookie: list it as a first-party, strictly necessary cookie",
                )
            )
    return problems


def _missing_safeguard(processor: Any) -> str:
    """Why a transfer needs a safeguard, and which ones a UK controller would name."""
    usual = (
        '"international data transfer agreement" or "UK Addendum to the EU standard '
        'contractual clauses"'
    )
    if processor.location == "US":
        # The UK's "data bridge" (2023) covers only organisations certified under the UK
        # Extension to the EU-US Data Privacy Framework: the country as such is not adequate.
        return (
            "United States has no UK adequacy decision for every organisation: say what "
            'safeguard covers the transfer ("UK Extension to the EU-US Data Privacy Framework" '
            f"if the processor is certified under it, otherwise e.g. {usual})"
        )
    return (
        f"{processor.location_name} has no UK adequacy decision: say what safeguard covers "
        f"the transfer (e.g. {usual})"
    )
