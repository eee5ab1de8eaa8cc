from django.contrib import admin
from django.urls import include, path

from tidings.campaigns import public_urls as campaign_public_urls
from tidings.web.urls import auth_urlpatterns

urlpatterns = [
    # First: the tracking pixel and click redirect are the busiest URLs (resolved in one step).
    path("", include(campaign_public_urls.tracking_patterns)),
    path("", include("tidings.journeys.public_urls")),
    path("", include("tidings.web.urls")),
    path("", include("tidings.policy.urls")),
    path("", include("tidings.audience.public_urls")),
    path("", include("tidings.campaigns.public_urls")),
    path("", include("tidings.crm.public_urls")),
    path("rights/", include("tidings.rights.public_urls")),
    path("rights/", include("tidings.rights.urls")),
    path("", include("tidings.booking.public_urls")),
    path("", include("tidings.analytics.public_urls")),
    path("audience/emails/", include("tidings.campaigns.system_email_urls")),
    path("audience/", include("tidings.audience.urls")),
    path("campaigns/templates/", include("tidings.campaigns.template_urls")),
    path("campaigns/journeys/", include("tidings.journeys.urls")),
    path("campaigns/", include("tidings.campaigns.urls")),
    path("crm/", include("tidings.crm.urls")),
    path("outbox/", include("tidings.campaigns.outbox_urls")),
    path("demos/", include("tidings.booking.urls")),
    path("bounces/", include("tidings.campaigns.bounces.urls")),
    # ESP bounce/complaint webhooks: anymail checks their signature or basic auth.
    path("webhooks/anymail/", include("tidings.campaigns.bounces.public_urls")),
    path("analytics/", include("tidings.analytics.urls")),
    path("", include("tidings.media.public_urls")),
    path("media-library/", include("tidings.media.urls")),
    *auth_urlpatterns,
    path("admin/", admin.site.urls),
    path("api/", include("tidings.api.api_urls")),
    path("settings/api/", include("tidings.api.urls")),
]
handler400 = "tidings.web.views.bad_request"
handler500 = "tidings.web.views.server_error"
