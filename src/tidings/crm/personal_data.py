"""What the CRM holds about a person, for the access package and erasure (see
``tidings.rights.sources``): enquiries, orders, support roles and support requests.

Orders are kept under a legal minimum when the policy says so: erasure leaves them, and the
receipt says when each goes."""

from __future__ import annotations

from typing import Any

from tidings.rights.sources import PersonalData, plain, register

from .models import Enquiry, Order, SupportContact, SupportRequest


def export_enquiries(contact: Any) -> list[dict[str, Any]]:
    rows = Enquiry.objects.filter(contact=contact).order_by("created_at", "pk")
    return [
        plain(
            {
                "channel": e.channel,
                "message": e.message,
                "removed_by_screening": e.redaction_note,
                "created_at": e.created_at,
                "last_contact_at": e.last_contact_at,
                "kept_until": e.kept_until,
            }
        )
        for e in rows
    ]


def erase_enquiries(contact: Any) -> int:
    deleted, _ = Enquiry.objects.filter(contact=contact).delete()
    return deleted


def _orders_kept() -> bool:
    from tidings.policy import get_policy

    policy = get_policy()
    return "order" in policy.retention and policy.is_legal_minimum("order")


def export_orders(contact: Any) -> list[dict[str, Any]]:
    rows = (
        Order.objects.filter(contact=contact)
        .select_related("organisation")
        .order_by("created_at", "pk")
    )
    return [
        plain(
            {
                "order_reference": o.order_reference,
                "organisation": o.organisation.name if o.organisation else "",
                "lines": o.lines,
                "invoice_address": o.invoice_address,
                "created_at": o.created_at,
            }
        )
        for o in rows
    ]


def erase_orders(contact: Any) -> int:
    if _orders_kept():
        return 0
    deleted, _ = Order.objects.filter(contact=contact).delete()
    return deleted


def kept_orders(contact: Any) -> list[dict[str, Any]]:
    from tidings.rights.retention import expiry

    if not _orders_kept():
        return []
    kept = []
    for order in Order.objects.filter(contact=contact).order_by("created_at", "pk"):
        until = expiry(order)
        kept.append(
            {
                # No reference: the words go into the anonymised request's receipt.
                "what": f"An order placed on {order.created_at.date().isoformat()} "
                "(kept for the legal minimum)",
                "until": until.date().isoformat() if hasattr(until, "date") else str(until),
            }
        )
    return kept


def export_support_contacts(contact: Any) -> list[dict[str, Any]]:
    rows = (
        SupportContact.objects.filter(contact=contact)
        .select_related("organisation")
        .order_by("created_at", "pk")
    )
    return [
        plain(
            {
                "organisation": s.organisation.name,
                "left_employer": s.left_employer,
                "created_at": s.created_at,
                "kept_until": s.kept_until,
            }
        )
        for s in rows
    ]


def erase_support_contacts(contact: Any) -> int:
    deleted, _ = SupportContact.objects.filter(contact=contact).delete()
    return deleted


def export_support_requests(contact: Any) -> list[dict[str, Any]]:
    rows = (
        SupportRequest.objects.filter(support_contact__contact=contact)
        .select_related("organisation")
        .order_by("created_at", "pk")
    )
    return [
        plain(
            {
                "organisation": r.organisation.name,
                "subject": r.subject,
                "notes": r.notes,
                "removed_by_screening": r.redaction_note,
                "created_at": r.created_at,
            }
        )
        for r in rows
    ]


def erase_support_requests(contact: Any) -> int:
    deleted, _ = SupportRequest.objects.filter(support_contact__contact=contact).delete()
    return deleted


def register_sources() -> None:
    register(
        PersonalData(
            name="enquiries",
            record_kind="enquiry",
            models=(Enquiry,),
            export=export_enquiries,
            erase=erase_enquiries,
            order=30,
        )
    )
    register(
        PersonalData(
            name="orders",
            title="Orders and invoices",
            record_kind="order",
            models=(Order,),
            export=export_orders,
            erase=erase_orders,
            kept=kept_orders,
            order=31,
        )
    )
    register(
        PersonalData(
            name="support_requests",
            record_kind="support_contact",
            models=(SupportRequest,),
            export=export_support_requests,
            erase=erase_support_requests,
            order=32,  # before the support contacts they belong to
        )
    )
    register(
        PersonalData(
            name="support_contacts",
            title="Support contact at your company",
            record_kind="support_contact",
            models=(SupportContact,),
            export=export_support_contacts,
            erase=erase_support_contacts,
            order=33,
        )
    )
