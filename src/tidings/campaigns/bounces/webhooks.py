"""The ESP webhook views behind ``/webhooks/anymail/<esp>/tracking/`` (``public_urls``).

They are django-anymail's tracking views, each answering 404 until the check it relies on is
configured, because anymail itself would accept unauthenticated posts (with a warning) when no
secret is set:

===============  ===========================================================================
ESP              what a post must carry
===============  ===========================================================================
amazon_ses       basic auth ``TIDINGS_ANYMAIL_WEBHOOK_SECRET`` (user:password in the SNS URL)
sendgrid         basic auth ``TIDINGS_ANYMAIL_WEBHOOK_SECRET``; and the signature, when
                 ``TIDINGS_SENDGRID_WEBHOOK_VERIFICATION_KEY`` is set
postmark, brevo  basic auth ``TIDINGS_ANYMAIL_WEBHOOK_SECRET``
mailgun          the HMAC signature made with ``TIDINGS_MAILGUN_WEBHOOK_SIGNING_KEY``
===============  ===========================================================================

Amazon SES: anymail confirms SNS subscriptions with boto3, which cannot be installed beside this
project's dependencies (botocore requires python-dateutil < 3), so confirmation is not automatic:
confirm the subscription once in the SNS console (a SubscriptionConfirmation post is ignored).
"""

from __future__ import annotations

from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.base import AnymailBaseWebhookView
from anymail.webhooks.brevo import BrevoTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.conf import settings
from django.http import Http404
from django.views.decorators.csrf import csrf_exempt


class SESTrackingWebhookView(AmazonSESTrackingWebhookView):
    """anymail's SES tracking view without boto3 (see the module docstring)."""

    def __init__(self, **kwargs):
        self.auto_confirm_enabled = False
        self.session_params, self.client_params = {}, {}
        AnymailBaseWebhookView.__init__(self, **kwargs)


def _secret(name: str) -> bool:
    return bool(getattr(settings, "ANYMAIL", {}).get(name))


def _guarded(view_class, needs: str):
    view = view_class.as_view()

    @csrf_exempt
    def guarded(request, *args, **kwargs):
        if not _secret(needs):
            raise Http404("this webhook is not configured")
        return view(request, *args, **kwargs)

    return guarded


VIEWS = {
    "amazon_ses": _guarded(SESTrackingWebhookView, "WEBHOOK_SECRET"),
    "sendgrid": _guarded(SendGridTrackingWebhookView, "WEBHOOK_SECRET"),
    "postmark": _guarded(PostmarkTrackingWebhookView, "WEBHOOK_SECRET"),
    "brevo": _guarded(BrevoTrackingWebhookView, "WEBHOOK_SECRET"),
    "mailgun": _guarded(MailgunTrackingWebhookView, "MAILGUN_WEBHOOK_SIGNING_KEY"),
}
