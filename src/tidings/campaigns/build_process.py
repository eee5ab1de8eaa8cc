"""The entry points of a builder process (``engine.builders``): set up, then build batches.

Kept outside the ``engine`` package on purpose: a new (spawned) process imports this module
before Django is set up, and importing ``engine`` needs the models.  So the engine is imported
inside ``build_batch``, once ``start`` has run.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from typing import Any

_messages: dict[str, Any] = {}  # recipe key -> CampaignMessages, compiled once per process


def start(overrides: Mapping[str, Any]) -> None:
    """The process initialiser: Django set up with the parent's settings that matter for
    building (the secret key signs links and tracking tokens; the base URL starts them)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
    import django  # imported here: before setup nothing of Django may be
    from django.conf import settings

    django.setup()
    for name, value in overrides.items():
        setattr(settings, name, value)
    # Start-up's objects live as long as the process: out of the collector's sight, its full
    # collections (a few per second while building) no longer walk them all again.
    gc.freeze()


def build_batch(recipe: Any, payloads: list[tuple]) -> list[tuple]:
    """Build each message of ``payloads`` with the campaign ``recipe`` (``engine.builders``
    describes both).  Returns, per payload, ("ok", mail_from, recipient, message_id, subject,
    smtputf8, data), ("template", reason) or ("failed", reason)."""
    from types import SimpleNamespace

    from tidings.campaigns.engine.context import CampaignMessages  # here, after start(): see above
    from tidings.campaigns.rendering import TemplateProblem

    messages = _messages.get(recipe.key)
    if messages is None:
        if len(_messages) > 8:  # campaigns long finished
            _messages.clear()
        messages = _messages[recipe.key] = CampaignMessages.from_recipe(recipe)
    out: list[tuple] = []
    for row_id, contact_pk, name, email, company, job_title, attributes, track in payloads:
        contact = SimpleNamespace(
            pk=contact_pk,
            name=name,
            email=email,
            company=company,
            job_title=job_title,
            attributes=attributes,
        )
        try:
            built = messages.build(row_id, contact, track, True)
        except TemplateProblem as exc:
            out.append(("template", str(exc)[:250]))
        except Exception as exc:  # for this contact alone; only the kind: no personal data
            out.append(("failed", f"build: {type(exc).__name__}"))
        else:
            out.append(
                (
                    "ok",
                    built.mail_from,
                    built.recipient,
                    built.message_id,
                    built.subject,
                    built.smtputf8,
                    built.data,
                )
            )
    return out
