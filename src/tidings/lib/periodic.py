"""The register of periodic jobs: each app says, from its ``AppConfig.ready()``, what must run
every so often (a django.tasks Task, by dotted path).  The workers' scheduler (``web.scheduler``)
claims and enqueues them; apps register here, below every app, so none imports web."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Periodic:
    name: str
    every: timedelta
    task: str  # dotted path of a django.tasks Task


REGISTRY: dict[str, Periodic] = {}


def register(name: str, every: timedelta, task: str) -> None:
    """Run ``task`` every ``every``; registering ``name`` again replaces it."""
    REGISTRY[name] = Periodic(name, every, task)
