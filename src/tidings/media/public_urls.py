"""Pictures of the media library, public: emails and public pages show them."""

from django.urls import re_path

from . import views

app_name = "media_public"

urlpatterns = [
    re_path(
        r"^media/(?P<key>[0-9a-f]{32})/(?P<name>[A-Za-z0-9._-]{1,80})$", views.serve, name="image"
    ),
]
