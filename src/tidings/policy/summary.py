"""``tidings policy check``'s readable summary of a valid policy (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .plain import fields_text, lawful_basis_text, retention_text
from .records import EMAIL_SOURCE, RECORD_KINDS, WEB_FORM_SOURCE
from .schema import SENSITIVE_TEXT, Policy


def print_summary(policy: Policy, console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or captured: wide enough that nothing is cut off
            console = Console(width=140)
    c = policy.controller
    console.print(
        f"[bold green]✓ {policy.source}[/] is a valid policy (version {policy.version}, "
        f"sha256 {policy.sha256[:12]})"
    )
    console.print(f"Controller: {c.name}, {c.address} — {c.email}")
    console.print(
        f"Supervisory authority: {c.supervisory_authority.name} ({c.supervisory_authority.url})"
    )

    purposes = Table(title="Purposes", show_lines=False)
    for column in ("purpose", "lawful basis", "required", "optional", "processors", "record"):
        purposes.add_column(column, overflow="fold")
    for key, p in policy.purposes.items():
        purposes.add_row(
            f"{key}\n[dim]{p.title}[/]",
            lawful_basis_text(p.lawful_basis)[0],
            fields_text(p.collects.required) or "—",
            fields_text(p.collects.optional) or "—",
            ", ".join(p.processors) or "—",
            p.record,
        )
    console.print(purposes)

    if policy.processors:
        processors = Table(title="Processors")
        for column in ("key", "name", "role", "location", "transfer safeguard"):
            processors.add_column(column, overflow="fold")
        for key, proc in policy.processors.items():
            processors.add_row(
                key,
                proc.name,
                proc.role,
                proc.location_name,
                proc.transfer_safeguard
                or ("—" if not proc.is_international_transfer else "[red]none[/]"),
            )
        console.print(processors)

    retention = Table(title="Retention")
    for column in ("record kind", "kept", "legal minimum", "extendable on request", "at the end"):
        retention.add_column(column, overflow="fold")
    for kind, rule in policy.retention.items():
        retention.add_row(
            f"{kind}\n[dim]{RECORD_KINDS[kind].label}[/]",
            retention_text(policy, kind),
            "yes" if rule.minimum else "no",
            "yes" if rule.extendable_on_request else "no",
            rule.on_end,
        )
    console.print(retention)

    sensitive = ", ".join(SENSITIVE_TEXT[s] for s in policy.sensitive.categories) or "none listed"
    console.print(
        f"Never stored (special categories, on detection: {policy.sensitive.on_detect}): "
        f"{sensitive}"
    )
    console.print(
        f"Marketing channels: {', '.join(policy.marketing.channels)}; topics: "
        f"{', '.join(policy.marketing.topics) or 'none'}"
    )
    sources = policy.purposes["enquiry"].sources if "enquiry" in policy.purposes else None
    for source, what in [
        (WEB_FORM_SOURCE, "Contact form (/contact) and demo booking (/demo/)"),
        (EMAIL_SOURCE, "Enquiries by mail to the support address"),
    ]:
        if sources is None:
            state = "off (no enquiry purpose)"
        elif source in sources:
            state = f'on (purposes.enquiry.sources lists "{source}")'
        else:
            state = f'off: add "{source}" to purposes.enquiry.sources to offer it'
        console.print(f"{what}: {state}", markup=False)
    console.print(
        f"Rights requests: {policy.rights.contact}, answered within "
        f"{policy.rights.response_days} days; identity verified: "
        f"{'yes' if policy.rights.verify_identity else 'no'}"
    )
