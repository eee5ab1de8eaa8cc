"""Helpers for the journeys tests: a welcome series and the people who go through it."""

from __future__ import annotations

from tests.campaigns.lifecycle_helpers import make_list, make_template, person, subscriber
from tidings.journeys.actions import JourneySpec, do_activate, do_create_journey
from tidings.journeys.models import Journey

__all__ = ["make_list", "make_template", "person", "subscriber", "welcome", "welcome_steps"]


def welcome_steps(template: str = "Welcome") -> list[dict]:
    return [
        {
            "id": "hello",
            "kind": "send_email",
            "template": template,
            "subject": "Welcome, {{ contact.first_name }}",
        },
        {"id": "pause", "kind": "wait", "duration": "2 days"},
        {"id": "tips", "kind": "send_email", "template": template, "subject": "Three tips"},
        {"id": "done", "kind": "end"},
    ]


def spec(**changes) -> JourneySpec:
    values = {
        "name": "Welcome",
        "topic": "product news",
        "trigger": Journey.Trigger.CONFIRMED,
        "trigger_params": {},
        "entry": Journey.Entry.ONCE,
        "entry_days": 0,
        "steps": welcome_steps(),
        "goals": [{"name": "booked a demo", "event": "demo_booked"}],
    }
    values.update(changes)
    return JourneySpec(**values)


def welcome(*, activate: bool = True, **changes) -> Journey:
    from tidings.campaigns.models import Template

    if not Template.objects.filter(name="Welcome").exists():
        make_template("Welcome")
    journey = do_create_journey(spec(**changes), actor=None)
    if activate:
        do_activate(journey, actor=None)
    return journey


def welcome_mail_on_the_wire(settings, sender):
    """Ann Example's welcome mail from an active journey sent as ``sender``, delivered to a
    real SMTP server (aiosmtpd): the one message it received."""
    from tests.campaigns.delivery_helpers import SmtpSink, transports_for
    from tidings.campaigns.engine import deliver_pending
    from tidings.journeys import engine
    from tidings.journeys.actions import do_enrol

    journey = welcome()
    journey.sender = sender
    journey.save()
    do_enrol(journey, subscriber("Ann Example", make_list(), email="ann@example.org"))
    engine.advance_due()
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        deliver_pending()
    [received] = sink.received
    return received
