"""Changes to API tokens and webhook endpoints, and the API's own actions on personal data.

Each is one transaction and writes its audit entry (ids only).  The API's endpoints call the
audience and campaign actions directly wherever those exist and audit themselves; the two here
wrap an action that does not write an audit entry of its own.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from tidings.lib.audit import audit

from .models import EVENTS, SCOPES, ApiToken, WebhookEndpoint

TOKEN_PREFIX = "tid_"  # noqa: S105 (a marker that tells tokens apart, not a secret)
# How long a new token lasts: the choices of the token page, in days (None: never expires).
EXPIRY_CHOICES: tuple[int | None, ...] = (30, 90, 365, None)
DEFAULT_EXPIRY_DAYS = 90


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def api_actor_label(token: ApiToken) -> str:
    return f"api:{token.pk}"


def audit_by_token(action: str, token: ApiToken, **details: Any) -> None:
    """An audit entry for what a request with ``token`` did, on behalf of its operator."""
    audit(action, actor=token.operator, actor_label=api_actor_label(token), **details)


# --- tokens -------------------------------------------------------------------------------------
@transaction.atomic
def do_create_api_token(
    *,
    name: str,
    operator: Any,
    scopes: Iterable[str],
    actor: Any,
    expires_in_days: int | None = DEFAULT_EXPIRY_DAYS,
) -> tuple[ApiToken, str]:
    """A new token for ``operator``; returns it with the token text, which is never shown again.

    It stops working ``expires_in_days`` days from now (None: never; the page warns)."""
    scopes = [s for s in SCOPES if s in set(scopes)]
    if not scopes:
        raise ValueError("choose at least one scope")
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise ValueError("a token lasts from 1 to 3650 days, or never expires")
    now = timezone.now()
    text = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name.strip()[:100],
        operator=operator,
        prefix=text[:10],
        token_hash=hash_token(text),
        scopes=scopes,
        created_at=now,
        created_by=actor if getattr(actor, "pk", None) else None,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    audit(
        "api_token.created",
        actor=actor,
        obj=token,
        operator=operator.pk,
        scopes=scopes,
        expires_in_days=expires_in_days,
    )
    return token, text


@transaction.atomic
def do_revoke_api_token(token: ApiToken, *, actor: Any) -> bool:
    """Stop a token from working, at once.  False if it was revoked already."""
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if revoked:
        audit("api_token.revoked", actor=actor, obj=token)
    return bool(revoked)


# --- webhook endpoints --------------------------------------------------------------------------
def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _check_endpoint(url: str, events: Iterable[str], fields: Iterable[str]) -> list[str]:
    from tidings.audience.operator_forms import contact_fields
    from tidings.lib import outbound

    from .webhooks import allow_private

    problems = []
    refused = outbound.check_url(url, allow_private=allow_private())
    if refused:
        problems.append(f"url: {refused}")
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        problems.append(f"events: unknown event(s) {', '.join(unknown)}")
    if not list(events):
        problems.append("events: choose at least one event")
    not_held = sorted(set(fields) - set(contact_fields()))
    if not_held:
        problems.append(f"fields: not contact fields the policy allows: {', '.join(not_held)}")
    return problems


class EndpointInvalid(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@transaction.atomic
def do_create_webhook_endpoint(
    *,
    url: str,
    events: Iterable[str],
    fields: Iterable[str] = (),
    description: str = "",
    actor: Any,
) -> WebhookEndpoint:
    """Register an endpoint; its secret is on the returned object (show it once)."""
    events, fields = list(events), list(fields)
    problems = _check_endpoint(url, events, fields)
    if problems:
        raise EndpointInvalid(problems)
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        events=events,
        fields=fields,
        description=description[:200],
        secret=new_webhook_secret(),
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    audit("webhook.created", actor=actor, obj=endpoint, events=events, fields=fields)
    return endpoint


@transaction.atomic
def do_set_webhook_active(endpoint: WebhookEndpoint, active: bool, *, actor: Any) -> None:
    """Enable (its failure count starts again) or disable an endpoint by hand."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=active,
        consecutive_failures=0 if active else endpoint.consecutive_failures,
        disabled_reason="" if active else "disabled by an operator",
    )
    endpoint.refresh_from_db()
    audit("webhook.enabled" if active else "webhook.disabled", actor=actor, obj=endpoint)


@transaction.atomic
def do_delete_webhook_endpoint(endpoint: WebhookEndpoint, *, actor: Any) -> None:
    endpoint_id = endpoint.pk
    endpoint.delete()
    audit("webhook.deleted", actor=actor, endpoint_id=endpoint_id)


# --- the API's own actions on personal data -----------------------------------------------------
@transaction.atomic
def do_create_contact_via_api(
    values: Mapping[str, Any], *, purpose: str, token: ApiToken
) -> tuple[Any, bool]:
    """audience.actions.do_create_contact, audited as the token's (which fields, never values)."""
    from tidings.audience.actions import do_create_contact

    contact, created = do_create_contact(values, purpose=purpose)
    audit_by_token(
        "contact.created" if created else "contact.found",
        token,
        obj=contact,
        fields=sorted(values),
        purpose=purpose,
    )
    return contact, created


@transaction.atomic
def do_subscribe_via_api(
    contact: Any,
    mailing_list: Any,
    *,
    source: str,
    wording_text: str,
    at: Any,
    token: ApiToken,
) -> Any:
    """Subscribe ``contact`` (confirmed) on the integrator's proof of consent: the ledger event
    keeps the wording, when it was given (``at``), and the token plus ``source`` as its origin."""
    from tidings.audience.actions import do_subscribe
    from tidings.audience.models import ConsentEvent

    sub = do_subscribe(
        contact,
        mailing_list,
        source=ConsentEvent.Source.API,
        source_ref=f"{api_actor_label(token)} {source}"[:200],
        wording_text=wording_text,
        confirmed=True,
        at=at,
    )
    audit_by_token(
        "subscription.created",
        token,
        obj=sub,
        list=mailing_list.pk,
    )
    return sub


@transaction.atomic
def do_send_transactional(
    template: Any,
    contact: Any,
    context: Mapping[str, Any],
    *,
    token: ApiToken,
    sender: Any = None,
) -> Any:
    """Queue ``template`` for ``contact`` through the delivery engine (campaigns.transactional
    .enqueue_transactional), ahead of campaign mail.  Raises TemplateProblem, TypeError (a
    renderer without extra variables) and Suppressed."""
    from tidings.audience.suppression import suppression_reason
    from tidings.campaigns.transactional import enqueue_transactional

    reason = suppression_reason(contact.email)
    if reason is not None:
        raise Suppressed(reason)
    message = enqueue_transactional(template, contact, context, sender=sender)
    audit_by_token(
        "transactional.queued",
        token,
        obj=contact,
        template=template.pk,
        message=message.pk,
    )
    return message


class Suppressed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the contact's address is suppressed ({reason})")
        self.reason = reason
