from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "tidings.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from tidings import signals
        from tidings.audience import contact_panels
        from tidings.lib import system_mail

        from .contact_panel import deliveries_panel
        from .events import count_unsubscribe
        from .mail import send_system_email
        from .personal_data import register_sources

        register_sources()
        from tidings.media import usage

        from .pictures import picture_uses

        usage.register(picture_uses)  # a picture a template or an unsent campaign shows stays
        # The audience app sits below campaigns: it sends system mail, counts an unsubscribe in
        # a campaign's report and shows a person's campaigns through these doors.
        system_mail.provide(send_system_email)
        signals.unsubscribe_recorded.connect(count_unsubscribe, dispatch_uid="campaigns.unsub")
        from .reconfirm import on_audience_changed

        # Four-eyes sending: a saved segment or list voids the confirmations it changes.
        signals.audience_changed.connect(on_audience_changed, dispatch_uid="campaigns.reconfirm")
        from tidings.audience import segment_uses

        from .template_actions import segment_live_uses

        segment_uses.register(segment_live_uses)  # a writer may not change a live audience
        contact_panels.register("campaigns/contact_deliveries_panel.html", deliveries_panel)
        from datetime import timedelta

        from tidings.lib import ingest
        from tidings.lib.periodic import register

        from .events import write_tracking_rows
        from .privacy import register_sources

        register_sources()  # events are personal data: access export and erasure

        from .engagement import register_engagement

        register_engagement()  # opened_in(), clicked_in(), received_in() in segments

        # Opens and clicks from the tracking endpoints, written in batches (lib/ingest.py).
        ingest.register_sink("tracking", write_tracking_rows)

        # Scheduled campaigns start within a minute of their time ("send now" does not wait:
        # it enqueues its own start).  Several workers may run it: starting claims each campaign
        # with a conditional UPDATE (lifecycle.do_start).
        # Finished campaigns' recipient domains are counted soon after, not on the report's
        # first view (a join of a million deliveries with their contacts: seconds).
        register(
            "campaigns.report-domains",
            timedelta(minutes=5),
            "tidings.campaigns.reports.count_finished_domains_task",
        )
        register(
            "campaigns.start-due",
            timedelta(minutes=1),
            "tidings.campaigns.lifecycle.start_due_campaigns_task",
        )

        # A/B tests whose waiting time is over send their winner to the rest.
        register(
            "campaigns.ab-decide",
            timedelta(minutes=1),
            "tidings.campaigns.abtest.decide_due_tests_task",
        )
        # Senders' domain health (SPF, DKIM, DMARC, reverse DNS...), daily; a regression emails
        # the owners (campaigns/deliverability/senders.py).
        # The dashboard's bulk-sender checklist: 30 days of deliveries are slow to aggregate on
        # every view at millions of rows (deliverability/checklist.py).
        from .deliverability.checklist import REFRESH as CHECKLIST_REFRESH

        register(
            "campaigns.bulk-checklist",
            CHECKLIST_REFRESH,
            "tidings.campaigns.deliverability.checklist.take_checklist_snapshot",
        )
        register(
            "campaigns.sender-health",
            timedelta(days=1),
            "tidings.campaigns.deliverability.senders.check_senders_task",
        )

        from django.conf import settings

        # Bounce mailbox (when TIDINGS_BOUNCE_MAILBOX_URL is set) and dropping old reports'
        # messages (always).
        register(
            "campaigns.bounces",
            timedelta(minutes=max(1, int(settings.TIDINGS_BOUNCE_FETCH_MINUTES))),
            "tidings.campaigns.bounces.tasks.bounce_mailbox_task",
        )

        from anymail.signals import tracking

        from .bounces import esp

        tracking.connect(esp.receive, dispatch_uid="tidings.campaigns.bounces.esp")

        from .bounces.privacy import register_sources as register_bounce_sources

        register_bounce_sources()
