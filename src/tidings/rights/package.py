"""The access package (Art. 15 and 20): everything held about one person, in one ZIP file.

- ``summary.html``: a page for people: each kind of data, why we hold it (the policy's purposes,
  lawful basis, processors and where they are, where it came from, how long we keep it) and the
  person's rights, with the complaint to the supervisory authority;
- ``data.json``: the same, for machines (portability);
- ``<source>.csv``: one file per kind of data, one row per record.

Built from the personal-data registry (``rights.sources``), so every app's records are in it, and
from nothing else: each source exports only the rows of the contact it is given.  The package is
built when it is downloaded and never stored, so no copy of anyone's data lies around on disk.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from tidings.policy import Policy, get_policy
from tidings.policy.notice import RIGHTS
from tidings.policy.plain import lawful_basis_text, retention_notes, retention_text
from tidings.web.csv_export import safe_row

from .sources import PersonalData, sources


@dataclass(frozen=True)
class Section:
    source: PersonalData
    rows: list[dict[str, Any]]
    why: dict[str, Any]

    @property
    def columns(self) -> list[str]:
        columns: list[str] = []
        for row in self.rows:
            columns += [key for key in row if key not in columns]
        return columns

    @property
    def table(self) -> list[list[Any]]:
        return [[_cell(row.get(c)) for c in self.columns] for row in self.rows]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


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
        "retention": retention or "Kept as long as the records it belongs to.",
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
    policy = get_policy()
    return [
        Section(
            source, source.export(contact) if contact is not None else [], why_held(source, policy)
        )
        for source in sources()
    ]


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
                    "sections": sections,
                    "held": [s for s in sections if s.rows],
                    "rights": rights,
                    "generated": generated,
                    "reference": reference,
                    "policy": policy,
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
