"""The record of processing activities (GDPR Art. 30(1)) as CSV, one row per purpose.

``tidings policy ropa [FILE] [-o out.csv]`` writes it.  Every cell comes from the policy; the
security measures of Art. 30(1)(g) are not part of the policy and are left out.
"""

from __future__ import annotations

import csv
from typing import TextIO

from .plain import field_label, lawful_basis_text, retention_notes, retention_text
from .records import RECORD_KINDS
from .schema import Policy

# Art. 6(1) point of each lawful basis, so the record names the provision it relies on.
LAWFUL_BASIS_ARTICLE: dict[str, str] = {
    "consent": "Art. 6(1)(a)",
    "contract": "Art. 6(1)(b)",
    "legal_obligation": "Art. 6(1)(c)",
    "vital_interests": "Art. 6(1)(d)",
    "public_task": "Art. 6(1)(e)",
    "legitimate_interests": "Art. 6(1)(f)",
}

COLUMNS: tuple[str, ...] = (
    "controller",
    "controller contact",
    "data protection officer",
    "purpose id",
    "purpose",
    "description",
    "lawful basis",
    "legitimate interest",
    "data subjects",
    "categories of personal data",
    "personal data required",
    "personal data optional",
    "sources",
    "recipients",
    "international transfers",
    "record kind",
    "retention",
    "legal minimum",
)

# A cell starting with one of these is read as a formula by spreadsheet programs (CSV injection):
# "=HYPERLINK(...)" in a processor's name would become a live link.  Tab and CR are included
# because some programs strip them and then see the character after.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The value as CSV cell text that no spreadsheet will evaluate as a formula.

    A value starting with =, +, -, @, tab or carriage return gets a leading apostrophe (OWASP's
    advice), which spreadsheets show as text and hide.  Meant for every CSV tidings writes for
    people to open; it lives here until a second CSV export needs it, then moves to a shared module.
    """
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _join(parts: list[str] | tuple[str, ...], sep: str = "; ") -> str:
    return sep.join(parts)


def ropa_rows(policy: Policy) -> list[dict[str, str]]:
    """One dict per purpose, keyed by ``COLUMNS``, values as plain (not yet neutralised) text."""
    c = policy.controller
    contact = _join([c.address, str(c.email), *([c.phone] if c.phone else [])])
    rows = []
    for key, purpose in policy.purposes.items():
        kind = RECORD_KINDS[purpose.record]
        fields = purpose.collects.all
        categories = list(dict.fromkeys(policy.category_of(f) or "" for f in fields))
        processors = policy.processors_for(key)
        basis, _ = lawful_basis_text(purpose.lawful_basis)
        retention = retention_text(policy, purpose.record)
        rows.append(
            {
                "controller": c.name,
                "controller contact": contact,
                "data protection officer": c.dpo or "",
                "purpose id": key,
                "purpose": purpose.title,
                "description": purpose.description or "",
                "lawful basis": f"{basis} ({LAWFUL_BASIS_ARTICLE[purpose.lawful_basis]})",
                "legitimate interest": purpose.legitimate_interest or "",
                "data subjects": kind.data_subjects or kind.label.lower(),
                "categories of personal data": _join([field_label(x) for x in categories if x]),
                "personal data required": _join(
                    [field_label(f) for f in purpose.collects.required]
                ),
                "personal data optional": _join(
                    [field_label(f) for f in purpose.collects.optional]
                ),
                "sources": _join(purpose.sources),
                "recipients": _join(
                    [f"{p.name} — {p.role} — {p.location_name}" for p in processors]
                )
                or "none",
                "international transfers": _join(
                    [
                        f"{p.name} ({p.location_name}): {p.transfer_safeguard or 'no safeguard'}"
                        for p in processors
                        if p.is_international_transfer
                    ]
                )
                or "none",
                "record kind": kind.label,
                "retention": " ".join(
                    [
                        retention[:1].upper() + retention[1:] + ".",
                        *retention_notes(policy, kind.key),
                    ]
                ),
                "legal minimum": "yes" if policy.is_legal_minimum(purpose.record) else "no",
            }
        )
    return rows


def write_ropa_csv(policy: Policy, fp: TextIO) -> None:
    """Write the record of processing as CSV (a header row, then one row per purpose) to ``fp``.

    Open files with ``newline=""``: the csv module writes its own CRLF line ends.
    """
    writer = csv.writer(fp)
    writer.writerow(COLUMNS)
    for row in ropa_rows(policy):
        writer.writerow([safe_cell(row[column]) for column in COLUMNS])
