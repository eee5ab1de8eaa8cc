"""Operator pages of journeys (under /campaigns/journeys/)."""

from django.urls import path

from . import views

app_name = "journeys"

urlpatterns = [
    path("", views.journey_index, name="index"),
    path("new/", views.journey_new, name="new"),
    path("<int:journey_id>/", views.journey_detail, name="detail"),
    path("<int:journey_id>/edit/", views.journey_edit, name="edit"),
    path("<int:journey_id>/activate/", views.journey_activate, name="activate"),
    path("<int:journey_id>/pause/", views.journey_pause, name="pause"),
    path("<int:journey_id>/resume/", views.journey_resume, name="resume"),
    path("<int:journey_id>/confirm/", views.journey_confirm, name="confirm"),
    path("<int:journey_id>/ask/", views.journey_request, name="request"),
    path("<int:journey_id>/archive/", views.journey_archive, name="archive"),
    path("<int:journey_id>/retry/", views.journey_retry, name="retry"),
    path("<int:journey_id>/move/", views.journey_move, name="move"),
]
