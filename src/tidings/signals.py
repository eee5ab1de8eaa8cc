"""Domain events other parts of tidings (outgoing webhooks, counters) listen to.

Senders fire them from actions inside ``transaction.on_commit`` so a listener never sees a change
that was rolled back.  Arguments are internal ids only, never personal data; a listener that needs
more loads it.  ``sender`` is the model class the event is about.

======================  ==============================================================
signal                  keyword arguments
======================  ==============================================================
contact_subscribed      contact_id, list_id
contact_unsubscribed    contact_id, list_id (None: from everything)
contacts_unsubscribed   contact_ids (tuple: every person one unsubscribe transaction took off
                        the list: one for a person's own, thousands for an operator's
                        removal), list_id; sent once before their contact_unsubscribed
                        signals.  Journeys (exit) and webhooks (contact.unsubscribed, one per
                        person) listen to this one, so a bulk removal costs a few queries
unsubscribe_recorded    contact_id, source_ref (where the unsubscribe came from, e.g.
                        "delivery:<id>"); the one signal sent INSIDE the unsubscribe's
                        transaction, not on commit, so a receiver's writes (the campaigns
                        count it in the report of the campaign whose link it was) commit or
                        roll back with it
delivery_bounced        contact_id (may be None), delivery_id (may be None), hard (bool)
delivery_complained     contact_id (may be None), delivery_id (may be None)
campaign_finished       campaign_id
rights_request_received request_id, kind
rights_request_near_due request_id, kind, due (date: the extended one, if extended), due_on (the
                        same date; deprecated)
contact_erased          email_hmac (the suppression list's keyed hash), erased_at (datetime),
                        reason ("request" or "retention"); no id survives an erasure
contacts_erased         email_hmacs (tuple: every person one erasure transaction erased),
                        erased_at, reason; sent once before their contact_erased signals
contact_objected        contact_id (objected to marketing, Art. 21)
enquiry_created         enquiry_id, contact_id
demo_booked             booking_id, contact_id
form_submitted          contact_id, form_id (a sign-up form; sent once the address confirmed it)
campaign_links_clicked  clicks: [(delivery_id, campaign_id, link index)], first clicks by people
journey_entered         journey_id, enrolment_id
journey_exited          journey_id, enrolment_id, reason (words, never personal)
journey_converted       journey_id, enrolment_id, reason ("goal: <name>")
journey_webhook         journey_id, enrolment_id, contact_id, event (a journey's webhook step)
audience_changed        what (words naming it: "its segment “VIPs”"), actor_id (an operator's
                        user id, or None); a saved segment or list changed how audiences
                        are chosen.  Sent INSIDE the saving transaction: the campaigns void
                        four-eyes confirmations it touches, and that commits with the save
mail_content_changed    what ("its template “Welcome”"), actor_id; a saved template or layout
                        changed what mail reads as it goes out.  Sent INSIDE the saving
                        transaction, like audience_changed: journeys void the four-eyes
                        confirmations it touches (campaigns void theirs directly)
======================  ==============================================================
"""

from __future__ import annotations

from django.dispatch import Signal

contact_subscribed = Signal()
contact_unsubscribed = Signal()
contacts_unsubscribed = Signal()
unsubscribe_recorded = Signal()
delivery_bounced = Signal()
delivery_complained = Signal()
campaign_finished = Signal()
rights_request_received = Signal()
rights_request_near_due = Signal()
contact_erased = Signal()
contacts_erased = Signal()
contact_objected = Signal()
enquiry_created = Signal()
demo_booked = Signal()
form_submitted = Signal()
campaign_links_clicked = Signal()
journey_entered = Signal()
journey_exited = Signal()
journey_converted = Signal()
journey_webhook = Signal()
audience_changed = Signal()
mail_content_changed = Signal()
