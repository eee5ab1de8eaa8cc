"""``tidings doctor``: checks a deployment and says, for each problem, how to fix it.

A *check* is a function that returns one ``Finding`` or several (one per transport, per domain,
...).  Checks are registered with ``@register(name, order=...)``; every module of the package
``tidings.ops.checks`` is imported when the doctor runs, so adding a check is adding a module
there (one module per subject: ``configuration``, ``database``, ``mail``, ``workers``,
``storage``, ``redis_server``, ``backups``).  A check in another top-layer app may also call
``register`` from its ``AppConfig.ready()``.

The extension point kept open for sender domains' DNS (SPF, DKIM, DMARC, MTA-STS) is exactly
this: a module ``tidings/ops/checks/sender_dns.py`` that registers a check returning one
``Finding`` per sender domain.  No DNS check ships here yet: the doctor does not pretend to look.

A check must be quick and bounded (network checks have timeouts of a few seconds), must not
change anything, and must never put personal data or secrets in a finding: findings are printed
and may be pasted into a ticket.  A check that raises is reported as failed, with the exception's
type, and the other checks still run.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import shlex
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from django.db import DatabaseError

Status = Literal["ok", "warn", "fail", "skip"]
OK: Status = "ok"
WARN: Status = "warn"
FAIL: Status = "fail"
SKIP: Status = "skip"


@dataclass(frozen=True)
class Finding:
    """What one check found.  ``fix`` says what to do (empty when nothing needs doing)."""

    name: str
    status: Status
    summary: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def not_checked_without_database(name: str) -> Finding:
    """A check that needs the database, when the database cannot be read."""
    return Finding(
        name,
        FAIL,
        "not checked: the database cannot be read (see the database check)",
        "make the database check pass first",
    )


CheckFunction = Callable[[], "Finding | Iterable[Finding]"]


@dataclass(frozen=True)
class Check:
    name: str
    function: CheckFunction
    order: int


_registry: dict[str, Check] = {}


def register(name: str, *, order: int = 500) -> Callable[[CheckFunction], CheckFunction]:
    """Register ``function`` as the doctor's check ``name`` (lower ``order`` runs first)."""

    def decorator(function: CheckFunction) -> CheckFunction:
        _registry[name] = Check(name, function, order)
        return function

    return decorator


def unregister(name: str) -> None:
    """Forget check ``name`` (a module's own check, when the module is unloaded)."""
    _registry.pop(name, None)


def load_checks() -> list[Check]:
    """Every registered check, after importing each module of ``tidings.ops.checks``."""
    from . import checks

    for module in pkgutil.iter_modules(checks.__path__):
        importlib.import_module(f"{checks.__name__}.{module.name}")
    return sorted(_registry.values(), key=lambda check: (check.order, check.name))


def run_checks(only: Iterable[str] | None = None, *, trace: bool = False) -> list[Finding]:
    """Run the checks (all, or those named in ``only``) and return every finding, in order.
    ``trace``: let a check's exception propagate (for its traceback) instead of reporting it."""
    wanted = set(only or ())
    findings: list[Finding] = []
    for check in load_checks():
        if wanted and check.name not in wanted:
            continue
        try:
            result = check.function()
        except DatabaseError:
            # The database is down or not set up: the database check says so and how to fix
            # it.  Not "the check itself failed … run --traceback", six times over, which sent
            # people looking for a bug in each check.
            if trace:
                raise
            findings.append(not_checked_without_database(check.name))
            continue
        except Exception as exc:  # one broken check must not hide the others
            if trace:
                raise
            findings.append(
                Finding(
                    check.name,
                    FAIL,
                    f"the check itself failed ({type(exc).__name__})",
                    f"run `tidings doctor --only {shlex.quote(check.name)} --traceback` to see "
                    "where it broke",
                )
            )
            continue
        findings.extend([result] if isinstance(result, Finding) else list(result))
    return findings


def failed(findings: Iterable[Finding]) -> bool:
    return any(f.status == FAIL for f in findings)


_LABELS = {OK: "ok  ", WARN: "WARN", FAIL: "FAIL", SKIP: "skip"}


def as_text(findings: list[Finding]) -> str:
    """One line per finding: status, name, what was found, and how to fix it."""
    width = max((len(f.name) for f in findings), default=0)
    lines = []
    for finding in findings:
        line = f"{_LABELS[finding.status]}  {finding.name:<{width}}  {finding.summary}"
        if finding.fix:
            line += f" — fix: {finding.fix}"
        lines.append(line)
    counts = {status: sum(f.status == status for f in findings) for status in _LABELS}
    lines.append(
        f"{counts[OK]} ok, {counts[WARN]} warning(s), {counts[FAIL]} failure(s)"
        + (f", {counts[SKIP]} skipped" if counts[SKIP] else "")
    )
    return "\n".join(lines)


def as_json(findings: list[Finding]) -> str:
    return json.dumps(
        {"ok": not failed(findings), "checks": [f.as_dict() for f in findings]}, indent=2
    )
