"""The record kinds tidings keeps, and the named clocks each one carries.

A retention rule in the policy names a record kind and the clock(s) its period runs from; the loader
checks those names against this registry, and the privacy notice uses the plain-English phrases
below ("12 months after our last contact with you").  A new kind of record that holds personal
data gets an entry here, and the policy must then give it a retention rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RecordKind:
    key: str
    label: str  # plural noun phrase for the notice: "Enquiries"
    clocks: dict[str, str] = field(
        default_factory=dict
    )  # clock name -> "our last contact with you"
    # The clocks "while <state>" means: the state ends at the first of these.
    while_states: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Who these records are about, for the Art. 30 record ("categories of data subjects").
    data_subjects: str = ""
    # The purpose key the apps look these records up by (the CRM's enquiry form asks the fields of
    # purposes.enquiry...); "" when any purpose may create them (website statistics).
    purpose_key: str = ""


RECORD_KINDS: dict[str, RecordKind] = {
    kind.key: kind
    for kind in [
        RecordKind(
            "enquiry",
            "Enquiries",
            {
                "created": "you first contacted us",
                "last_contact": "our last contact with you",
            },
            data_subjects="people who contact us with an enquiry",
            purpose_key="enquiry",
        ),
        RecordKind(
            "subscription",
            "Newsletter subscriptions",
            {
                "created": "you signed up",
                "confirmed": "you confirmed your subscription",
                "unsubscribed": "you unsubscribe",
                "list_closed": "we close the list",
            },
            while_states={"subscribed": ("unsubscribed", "list_closed")},
            data_subjects="newsletter subscribers",
            purpose_key="newsletter",
        ),
        RecordKind(
            "order",
            "Orders and invoices",
            {"created": "the order was placed"},
            data_subjects="customers, and the staff of customers who place orders",
            purpose_key="order",
        ),
        RecordKind(
            "support_contact",
            "Support contacts at our customers",
            {
                "created": "we added you as a contact for your company",
                "contract_end": "your company's contract with us ends",
                "left_employer": "we learn you left it",
            },
            data_subjects="staff of our customers",
            purpose_key="contract_support",
        ),
        RecordKind(
            "email_event",
            "Email opens, clicks and bounces",
            {"sent": "we sent the email", "created": "it happened"},
            data_subjects="newsletter subscribers",
        ),
        RecordKind(
            "journey_enrolment",
            "Places in automated email series",
            {"entered": "you entered the series", "finished": "you left or finished the series"},
            data_subjects="people in our automated email series",
        ),
        RecordKind(
            "page_view",
            "Website visit statistics",
            {"created": "the visit"},
            data_subjects="website visitors",
        ),
    ]
}

# Sources of the enquiry purpose that switch something on (the words must match exactly):
WEB_FORM_SOURCE = "web form"  # the public contact form /contact and demo booking /demo/
EMAIL_SOURCE = "email"  # enquiries opened by mail to the support address
