"""CRM records for a view, or 404."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from .models import (
    Contract,
    Enquiry,
    KeptOnRequest,
    Order,
    Organisation,
    SupportContact,
    SupportRequest,
)


def organisation_or_404(pk: int) -> Organisation:
    return get_object_or_404(Organisation, pk=pk)


def enquiry_or_404(pk: int) -> Enquiry:
    return get_object_or_404(Enquiry.objects.select_related("contact"), pk=pk)


def order_or_404(pk: int) -> Order:
    return get_object_or_404(Order.objects.select_related("contact", "organisation"), pk=pk)


def contract_or_404(pk: int) -> Contract:
    return get_object_or_404(Contract.objects.select_related("organisation"), pk=pk)


def support_contact_or_404(pk: int) -> SupportContact:
    return get_object_or_404(
        SupportContact.objects.select_related("contact", "organisation"), pk=pk
    )


def support_request_or_404(pk: int) -> SupportRequest:
    return get_object_or_404(
        SupportRequest.objects.select_related(
            "organisation", "support_contact", "support_contact__contact"
        ),
        pk=pk,
    )


# The records that can be kept longer on request, by the name in their URL.
EXTENDABLE: dict[str, tuple[type[KeptOnRequest], str]] = {
    "enquiries": (Enquiry, "crm:enquiry"),
    "orders": (Order, "crm:order"),
    "support-contacts": (SupportContact, "crm:support-contact"),
}


def extendable_or_404(section: str, pk: int) -> tuple[KeptOnRequest, str]:
    """The record and the URL name of its page."""
    if section not in EXTENDABLE:
        from django.http import Http404

        raise Http404("no such records")
    model, url_name = EXTENDABLE[section]
    return get_object_or_404(model, pk=pk), url_name
