"""Public pages of data-subject requests (no sign-in: the emailed link is the key)."""

from django.urls import path

from tidings.lib.urltokens import token_path

from . import public_views

app_name = "rights"

urlpatterns = [
    path("", public_views.request_form, name="request"),
    path("sent", public_views.sent, name="sent"),
    token_path("v/<str:token>", public_views.verify, name="verify"),
    token_path("download/<str:token>", public_views.download, name="download"),
]
