"""Operator pages of bounces and complaints (under /bounces/)."""

from django.urls import path

from . import views

app_name = "bounces"

urlpatterns = [
    path("", views.report_index, name="index"),
    path("<int:report_id>/retry/", views.report_retry, name="retry"),
    path("retry/", views.report_retry_all, name="retry-all"),
]
