"""The embedded outbox's operator pages (under /outbox/): what the outbox transport kept."""

from django.urls import path

from . import outbox_views

app_name = "outbox"

urlpatterns = [
    path("", outbox_views.outbox_index, name="index"),
    path("<int:message_id>/", outbox_views.outbox_message, name="message"),
]
