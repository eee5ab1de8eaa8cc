"""Reading CRM records for the operator pages: searches, newest first.

A person is found as on the contact pages (the start of the address, or of any word of the name:
``audience.contacts.search_contacts``, which PostgreSQL answers from indexes); organisations by
the start of their name or any word in it; orders also by the start of their reference.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.http import Http404

from tidings.audience.contacts import search_contacts
from tidings.policy import get_policy
from tidings.policy.plain import lawful_basis_text, retention_text

from .actions import ENQUIRY, WEB_FORM, enquiry_channels
from .models import Contract, Enquiry, Order, Organisation, SupportContact, SupportRequest


def _name_match(field: str, q: str) -> Q:
    needle = q.lower()
    return Q(**{f"{field}__startswith": needle}) | Q(**{f"{field}__contains": f" {needle}"})


def search_organisations(q: str = "") -> QuerySet[Organisation]:
    organisations = Organisation.objects.all()
    q = q.strip()
    if q:
        organisations = organisations.alias(name_lower=Lower("name")).filter(
            _name_match("name_lower", q)
        )
    return organisations


def _people(q: str) -> Q:
    return Q(contact__in=search_contacts(q).values("pk"))


def _organisation(q: str, path: str = "organisation") -> Q:
    return Q(**{f"{path}__in": search_organisations(q).values("pk")})


def search_enquiries(q: str = "", channel: str = "") -> QuerySet[Enquiry]:
    enquiries = Enquiry.objects.select_related("contact")
    if q.strip():
        enquiries = enquiries.filter(_people(q.strip()))
    if channel:
        enquiries = enquiries.filter(channel=channel)
    return enquiries


def search_orders(q: str = "") -> QuerySet[Order]:
    orders = Order.objects.select_related("contact", "organisation")
    q = q.strip()
    if q:
        orders = orders.alias(reference_lower=Lower("order_reference")).filter(
            Q(reference_lower__startswith=q.lower()) | _people(q) | _organisation(q)
        )
    return orders


def search_contracts(q: str = "") -> QuerySet[Contract]:
    contracts = Contract.objects.select_related("organisation")
    q = q.strip()
    if q:
        contracts = contracts.filter(_organisation(q) | Q(reference__istartswith=q))
    return contracts


def search_support_contacts(q: str = "") -> QuerySet[SupportContact]:
    support_contacts = SupportContact.objects.select_related("contact", "organisation")
    q = q.strip()
    if q:
        support_contacts = support_contacts.filter(_people(q) | _organisation(q))
    return support_contacts


def search_support_requests(q: str = "") -> QuerySet[SupportRequest]:
    requests = SupportRequest.objects.select_related(
        "organisation", "support_contact", "support_contact__contact"
    )
    q = q.strip()
    if q:
        requests = requests.filter(
            Q(subject__icontains=q)
            | _organisation(q)
            | Q(support_contact__contact__in=search_contacts(q).values("pk"))
        )
    return requests


# --- the web form (the contact form's, and the booking page's) --------------------------------
def require_web_form() -> None:
    """Raise Http404 unless the policy lists the web form as a source of enquiries: the contact
    form and the booking page exist only while it does."""
    if WEB_FORM not in enquiry_channels():
        raise Http404("no contact form")


def enquiry_notice() -> dict[str, str]:
    """What a form taking enquiries says about the use of the details, from the policy."""
    policy = get_policy()
    basis, _ = lawful_basis_text(policy.purpose(ENQUIRY).lawful_basis)
    return {
        "purpose": policy.purpose(ENQUIRY).title,
        "basis": basis.lower(),
        "retention": retention_text(policy, ENQUIRY),
        "controller": policy.controller.name,
    }
