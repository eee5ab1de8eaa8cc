from datetime import timedelta

from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "tidings.journeys"
    label = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        from tidings.lib import ingest
        from tidings.lib.periodic import register

        from .personal_data import register_sources
        from .triggers import connect

        register_sources()  # enrolments are personal data: access package and erasure
        from .stats import install_sweep

        install_sweep()  # expired enrolments go, their counts stay as anonymous tallies
        from .engagement import add_engagement

        add_engagement()  # journey mail counts in opened_in(), clicked_in(), received_in()
        connect()  # triggers and exits
        from tidings.campaigns.template_actions import register_live_uses

        from .mail import live_uses

        # Saving a template or layout a started journey sends needs the send permission.
        register_live_uses(live_uses)
        from tidings.campaigns.engine.jobs import register_send_check

        from .mail import queued_refusals

        # Journey mail waiting in the queue is checked again as it goes, as campaign mail is.
        register_send_check("journey:", queued_refusals)
        from tidings.audience import segment_uses

        from .mail import segment_live_uses

        segment_uses.register(segment_live_uses)  # nor change who enters a started journey
        from tidings import signals

        from .four_eyes import on_changed

        # Four-eyes sending: a saved template, layout, segment or list voids the confirmations
        # of the journeys it changes (inside the saving transaction).
        signals.audience_changed.connect(on_changed, dispatch_uid="journeys.four_eyes.audience")
        signals.mail_content_changed.connect(on_changed, dispatch_uid="journeys.four_eyes.mail")
        from .tracking import SINK, write_rows

        # Opens and clicks of journey mail, written in batches like the campaigns' (tracking.py).
        ingest.register_sink(SINK, write_rows)
        # Due steps run within a minute (each run works until nothing is due, ~50 s at most);
        # several workers may run it: enrolments are claimed with SKIP LOCKED (engine.py).
        register(
            "journeys.advance",
            timedelta(minutes=1),
            "tidings.journeys.engine.advance_journeys_task",
        )
        # Hourly, though each day is gone through once (Journey.dates_through): a journey
        # activated after midnight's run still sees today, and a missed day is caught up.
        register(
            "journeys.dates",
            timedelta(hours=1),
            "tidings.journeys.triggers.enrol_by_date_task",
        )
        # Incremental (people changed since the last check), with a full diff hourly (segments.py).
        register(
            "journeys.segments",
            timedelta(minutes=1),
            "tidings.journeys.segments.check_segments_task",
        )
        register(
            "journeys.event-keys",
            timedelta(days=1),
            "tidings.journeys.triggers.prune_event_keys_task",
        )
