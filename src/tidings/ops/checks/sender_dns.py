"""Sender domains' DNS health (SPF, DKIM, DMARC, reverse DNS): from the last stored check of each
sender domain (``campaigns.deliverability``), so the doctor stays quick; the worker's daily job
and `tidings deliverability check DOMAIN` keep them fresh."""

from __future__ import annotations

from django.db import DatabaseError

from tidings.ops.doctor import FAIL, OK, SKIP, WARN, Finding, register

_STATUS = {"ok": OK, "warn": WARN, "fail": FAIL, "skip": SKIP}


@register("sender-dns", order=60)
def check_sender_domains() -> list[Finding]:
    from tidings.campaigns.deliverability.senders import doctor_findings

    try:
        found = doctor_findings()
    except DatabaseError:
        return [
            Finding(
                "sender-dns",
                FAIL,
                "not checked: the database cannot be read (see the database check)",
                "make the database check pass first",
            )
        ]
    if not found:
        return [
            Finding(
                "sender-dns",
                WARN,
                "no sender yet: campaigns need a From address whose domain passes the checks",
                "add one under Campaigns → Senders",
            )
        ]
    return [
        Finding(item["name"], _STATUS.get(item["status"], WARN), item["summary"], item["fix"])
        for item in found
    ]
