"""The database (reachable, every migration applied, none unknown) and the policy file."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import DatabaseError, connection

from tidings.ops.doctor import FAIL, OK, WARN, Finding, register


@register("database", order=20)
def check_database() -> list[Finding]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return [
            Finding(
                "database",
                FAIL,
                f"cannot reach the {connection.vendor} database: {_first_line(exc)}",
                "check DATABASE_URL (host, port, user, password, database name) and that the "
                "server is running and accepts connections from this machine",
            )
        ]
    elapsed = (time.perf_counter() - started) * 1000
    findings = [
        Finding("database", OK, f"{_describe()} reachable ({elapsed:.0f} ms)"),
        _migrations(),
    ]
    return findings


def _describe() -> str:
    if connection.vendor == "sqlite":
        return f"SQLite {settings.DATABASES['default']['NAME']}"
    return f"{connection.vendor} {connection.settings_dict.get('HOST') or 'localhost'}"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _migrations() -> Finding:
    from tidings.ops.schema import schema_state

    state = schema_state()
    if state.unknown:
        return Finding(
            "database.migrations",
            FAIL,
            f"the database has {len(state.unknown)} migration(s) this code does not know "
            f"(first: {state.unknown[0]}): it belongs to a newer version of tidings",
            "upgrade this machine's tidings to the version the database was migrated by",
        )
    if state.pending:
        return Finding(
            "database.migrations",
            FAIL,
            f"{len(state.pending)} migration(s) not applied (first: {state.pending[0]})",
            "run `tidings migrate` (once, from one machine) before starting the new version",
        )
    return Finding(
        "database.migrations", OK, f"every migration applied ({state.applied_count} in all)"
    )


@register("policy", order=30)
def check_policy() -> Finding:
    from tidings.policy import PolicyError, load_policy
    from tidings.policy.commands import EXAMPLE_POLICY

    path = settings.TIDINGS_POLICY
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        lines = exc.lines()
        return Finding(
            "policy",
            FAIL,
            f"{path} is not valid: {lines[0] if lines else exc}",
            "run `tidings policy check " + str(path) + "` and correct each line it prints",
        )
    except OSError as exc:
        return Finding(
            "policy",
            FAIL,
            f"cannot read {path}: {exc.strerror}",
            "point TIDINGS_POLICY at your policy.toml",
        )
    if str(path) == str(EXAMPLE_POLICY):
        return Finding(
            "policy",
            FAIL if settings.PRODUCTION else WARN,
            "the example company's policy is in use",
            "write your own policy.toml (start from the example) and set TIDINGS_POLICY",
        )
    return Finding(
        "policy",
        OK,
        f"{path} is valid: {len(policy.purposes)} purposes, {len(policy.processors)} processors",
    )


@register("policy.lists", order=31)
def check_list_topics() -> Finding:
    """Open lists of a topic the policy no longer names: the privacy notice does not mention
    that topic, so tidings takes no sign-ups to them and no campaign can go to them."""
    from tidings.audience.models import MailingList
    from tidings.policy import PolicyError, get_policy

    try:
        topics = get_policy().marketing.topics
    except (PolicyError, OSError):
        return Finding("policy.lists", WARN, "not checked: the policy cannot be read")
    orphans = list(
        MailingList.objects.filter(closed_at__isnull=True)
        .exclude(topic__in=topics)
        .order_by("name")
        .values_list("name", "topic")
    )
    if not orphans:
        return Finding("policy.lists", OK, "every open list has one of the policy's topics")
    named = ", ".join(f'{name} ("{topic}")' for name, topic in orphans[:5])
    more = f" and {len(orphans) - 5} more" if len(orphans) > 5 else ""
    return Finding(
        "policy.lists",
        WARN,
        f"{len(orphans)} open list(s) of a topic the policy no longer names: {named}{more}",
        "add the topic back to [marketing] topics, or close the list (Lists → Close) so its "
        "subscriptions' retention runs",
    )


@register("policy.fields", order=32)
def check_stored_fields() -> Finding:
    """Contact data of fields no purpose collects any more (the policy changed since): kept
    without a purpose, against the policy's own word."""
    from tidings.audience.stored_fields import fields_outside_policy
    from tidings.policy import PolicyError

    try:
        found = fields_outside_policy()
    except (PolicyError, OSError):
        return Finding("policy.fields", WARN, "not checked: the policy cannot be read")
    if not found:
        return Finding(
            "policy.fields", OK, "every field stored on contacts is one a purpose collects"
        )
    listed = ", ".join(f"{name} ({n} contact(s))" for name, n in found.items())
    return Finding(
        "policy.fields",
        WARN,
        f"contacts hold fields no purpose of the policy collects any more: {listed}",
        "add the field back to a purpose's collects, or remove the data: "
        "tidings audience prune-fields --yes",
    )


@register("contacts.addresses", order=33)
def check_contacts_kept_apart() -> Finding:
    """Contacts that are one mailbox with an older contact by the address key (case folded)
    but were two before it existed (SQLite's lower() folds ASCII only: zoë@ and ZOË@; neither
    database folded straße@ with strasse@).  The upgrade kept them apart rather than merge
    people's data unasked (audience migration 0011); an operator merges them."""
    from tidings.audience.contacts import contacts_kept_apart

    count, pairs = contacts_kept_apart()
    if not count:
        return Finding("contacts.addresses", OK, "every contact's address is its own (case folded)")
    listed = ", ".join(
        f"#{pk} (same address as #{holder})" if holder else f"#{pk}" for pk, holder in pairs
    )
    more = f" and {count - len(pairs)} more" if count > len(pairs) else ""
    return Finding(
        "contacts.addresses",
        WARN,
        f"{count} contact(s) have the address of an older contact once case is folded, kept "
        f"apart by the upgrade to case-folded address keys: {listed}{more}",
        "merge each into the older contact: tidings audience merge-contacts OLDER_ID NEWER_ID "
        "--yes (or Audience → Contacts → the older contact → Merge with…), which moves "
        "everything of the newer one to the older.  Until then a look-up by address "
        "finds the older one, erasure and the suppression list cover both",
    )


@register("contacts.local-parts", order=34)
def check_local_parts() -> Finding:
    """Addresses with more than 64 octets before the @, stored before every way in refused
    them (RFC 5321 4.5.3.1): receiving servers may refuse mail to them, and the contact page's
    form will not save them unchanged."""
    from tidings.audience.contacts import local_parts_too_long

    count, ids = local_parts_too_long()
    if not count:
        return Finding(
            "contacts.local-parts", OK, "every contact's address has at most 64 octets before @"
        )
    listed = ", ".join(f"#{pk}" for pk in ids)
    more = f" and {count - len(ids)} more" if count > len(ids) else ""
    return Finding(
        "contacts.local-parts",
        WARN,
        f"{count} contact(s) have an address with more than 64 octets before the @ (the most "
        f"RFC 5321 allows; stored before tidings checked it): {listed}{more}",
        "correct each address (Audience → Contacts → the contact → Edit) or delete the "
        "contact; receiving servers may refuse mail to it, and a form or import will not "
        "accept it again as it is",
    )
