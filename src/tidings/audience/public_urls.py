"""Public pages of the audience app: sign-up forms, confirmation, preference centre, unsubscribe."""

from django.urls import path  # noqa: F401

app_name = "public"

urlpatterns: list = []
