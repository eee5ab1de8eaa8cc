from django.contrib import admin
from django.urls import include, path

from tidings.web.urls import auth_urlpatterns

urlpatterns = [
    path("", include("tidings.web.urls")),
    path("", include("tidings.policy.urls")),
    path("", include("tidings.audience.public_urls")),
    path("audience/", include("tidings.audience.urls")),
    *auth_urlpatterns,
    path("admin/", admin.site.urls),
]
