"""Operator pages of the audience app."""

from django.urls import path  # noqa: F401

app_name = "audience"

urlpatterns: list = []
