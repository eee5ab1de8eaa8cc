"""The system emails' pages (included at audience/emails/ by the root URLs)."""

from django.urls import path

from . import system_email_views

app_name = "system-emails"

urlpatterns = [
    path("", system_email_views.system_email_index, name="index"),
    path("<str:key>/", system_email_views.system_email_edit, name="edit"),
]
