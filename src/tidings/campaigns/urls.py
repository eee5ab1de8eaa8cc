"""Operator pages of the campaigns app (under /campaigns/)."""

from django.urls import path

from . import ab_views, report_views, views
from .deliverability import sender_views
from .deliverability import views as deliverability_views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_index, name="index"),
    path("new/", views.campaign_new, name="new"),
    path("<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("<int:campaign_id>/edit/", views.campaign_edit, name="edit"),
    path("<int:campaign_id>/preview/", views.campaign_preview, name="preview"),
    path("<int:campaign_id>/test/", views.campaign_test, name="test"),
    path("<int:campaign_id>/schedule/", views.campaign_schedule, name="schedule"),
    path("<int:campaign_id>/unschedule/", views.campaign_unschedule, name="unschedule"),
    path("<int:campaign_id>/pause/", views.campaign_pause, name="pause"),
    path(
        "<int:campaign_id>/ask/",
        views.campaign_request_confirmation,
        name="request-confirmation",
    ),
    path("<int:campaign_id>/resume/", views.campaign_resume, name="resume"),
    path("<int:campaign_id>/cancel/", views.campaign_cancel, name="cancel"),
    path("<int:campaign_id>/clone/", views.campaign_clone, name="clone"),
    path("<int:campaign_id>/retry/", views.campaign_retry, name="retry"),
    path("<int:campaign_id>/archive/", views.campaign_archive, name="archive"),
    path("<int:campaign_id>/report/", report_views.campaign_report_page, name="report"),
    path("<int:campaign_id>/report.csv", report_views.campaign_report_csv, name="report-csv"),
    path("<int:campaign_id>/ab/", ab_views.campaign_ab, name="ab"),
    path("<int:campaign_id>/ab/results/", ab_views.campaign_ab_results, name="ab-results"),
    path(
        "<int:campaign_id>/ab/pick/<int:variant_id>/",
        ab_views.campaign_ab_pick,
        name="ab-pick",
    ),
    path("<int:campaign_id>/follow-up/", ab_views.campaign_follow_up, name="follow-up"),
    path("deliverability/", deliverability_views.deliverability_index, name="deliverability"),
    path("deliverability/dmarc/upload/", deliverability_views.dmarc_upload, name="dmarc-upload"),
    path("deliverability/lookup/", deliverability_views.lookup, name="lookup"),
    path("senders/", sender_views.sender_index, name="senders"),
    path("senders/<int:sender_id>/verify/", sender_views.sender_verify, name="sender-verify"),
    path("senders/<int:sender_id>/check/", sender_views.sender_check, name="sender-check"),
]
