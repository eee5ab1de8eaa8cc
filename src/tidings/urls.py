from django.contrib import admin
from django.urls import include, path

from tidings.campaigns import public_urls as campaign_public_urls
from tidings.web.urls import auth_urlpatterns

urlpatterns = [
    # First: the tracking pixel and click redirect are the busiest URLs (resolved in one step).
    path("", include(campaign_public_urls.tracking_patterns)),
    path("", include("tidings.web.urls")),
    path("", include("tidings.policy.urls")),
    path("", include("tidings.audience.public_urls")),
    path("", include("tidings.campaigns.public_urls")),
    path("", include("tidings.crm.public_urls")),
    path("", include("tidings.analytics.public_urls")),
    path("audience/", include("tidings.audience.urls")),
    path("campaigns/templates/", include("tidings.campaigns.template_urls")),
    path("campaigns/", include("tidings.campaigns.urls")),
    path("crm/", include("tidings.crm.urls")),
    path("outbox/", include("tidings.campaigns.outbox_urls")),
    path("analytics/", include("tidings.analytics.urls")),
    *auth_urlpatterns,
    path("admin/", admin.site.urls),
]
