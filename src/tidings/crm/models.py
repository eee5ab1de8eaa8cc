"""The CRM: organisations, enquiries, orders, contracts, support contacts and support requests.

People live on ``audience.Contact`` (one person, one Contact); these records point at it and carry
the clocks their retention rule runs from (``rights/retention.py`` reads them; the policy's
``[retention.<kind>]`` says how long).  Records that hold a person are PROTECTed against deleting
the Contact behind their back: they go through the retention sweep or an erasure, never by cascade.
Create and change them only through ``crm/actions.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from tidings.audience.models import Contact
from tidings.policy.schema import SENSITIVE_TEXT


def redaction_note(categories: list[str]) -> str:
    """ "health, political opinions": what screening removed from a text (never the words)."""
    return ", ".join(SENSITIVE_TEXT.get(c, c.replace("_", " ")) for c in categories)


class Organisation(models.Model):
    """A company we deal with.  Not a person: nothing here is personal data."""

    name = models.CharField(max_length=200)
    address = models.TextField(blank=True, help_text="The organisation's own address.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(Lower("name"), name="crm_organisation_name_lower")]

    def __str__(self) -> str:
        return self.name


class KeptOnRequest(models.Model):
    """The fields of an extension "on request": the person asked us to keep the record longer.

    A record then expires at the later of its rule's expiry and ``kept_until`` (midnight UTC at
    the start of that day), so an extension can only ever push the date out, never bring it in.
    Recorded with ``crm.actions.do_extend_retention``, which checks that the policy's rule for
    the record kind says ``extendable_on_request``.
    """

    kept_until = models.DateField(null=True, blank=True)
    kept_until_requested_by = models.CharField(
        max_length=200, blank=True, help_text="Who asked us to keep it longer, and how."
    )
    kept_until_recorded_at = models.DateTimeField(null=True, blank=True)
    kept_until_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        abstract = True


class Enquiry(KeptOnRequest):
    """Someone asked us something: by the website's contact form, email, phone..."""

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="enquiries")
    channel = models.CharField(
        max_length=50, help_text="Where it came from: one of the enquiry purpose's sources."
    )
    message = models.TextField(help_text="Screened: special-category data is removed.")
    redacted_categories = models.JSONField(
        default=list,
        blank=True,
        help_text="Special categories screening removed from the message (never the text).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    # The retention clock "last_contact": moved on each time we are in touch about it.
    last_contact_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "enquiries"
        indexes = [models.Index(fields=["last_contact_at"])]

    def __str__(self) -> str:
        return f"Enquiry #{self.pk}"

    @property
    def redaction_note(self) -> str:
        return redaction_note(self.redacted_categories)


class Order(KeptOnRequest):
    """An order and its invoice details (kept for the legal minimum, e.g. 6 years)."""

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="orders")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    order_reference = models.CharField(max_length=100, blank=True)
    # [{"quantity": 2, "description": "Support hours", "unit_price": "95.00"}, ...]
    lines = models.JSONField(default=list, blank=True)
    invoice_address = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)  # the retention clock "created"

    class Meta:
        indexes = [
            models.Index(fields=["created_at"]),
            models.Index(Lower("order_reference"), name="crm_order_reference_lower"),
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk}"


class Contract(models.Model):
    """A contract with an organisation.  Its end is the "contract_end" clock of the people on it:
    see ``rights/retention.py`` (the latest end of the organisation's contracts, once all have
    an end)."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="contracts"
    )
    reference = models.CharField(max_length=100, blank=True)
    start = models.DateField()
    end = models.DateField(null=True, blank=True, help_text="Blank while it runs on.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-start", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__isnull=True) | models.Q(end__gte=models.F("start")),
                name="crm_contract_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"Contract #{self.pk}"


class SupportContact(KeptOnRequest):
    """A person at an organisation we support under contract (contact × organisation)."""

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="support_roles")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="support_contacts"
    )
    left_employer = models.DateField(
        null=True, blank=True, help_text="When we learnt they left the organisation."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "organisation"], name="crm_one_support_role_per_organisation"
            )
        ]
        indexes = [models.Index(fields=["left_employer"])]

    def __str__(self) -> str:
        return f"Support contact #{self.pk}"


class SupportRequest(models.Model):
    """A request for support.  It belongs to the support contact who made it and goes with them:
    nothing a person wrote outlives the retention of their support-contact record."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="support_requests"
    )
    support_contact = models.ForeignKey(
        SupportContact, on_delete=models.CASCADE, related_name="requests"
    )
    subject = models.CharField(max_length=200)
    notes = models.TextField(blank=True, help_text="Screened: special-category data is removed.")
    redacted_categories = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Support request #{self.pk}"

    @property
    def redaction_note(self) -> str:
        return redaction_note(self.redacted_categories)
