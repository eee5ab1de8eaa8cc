"""Operator pages of the rights app (all need the "privacy" permission)."""

from django.urls import path

from . import views

app_name = "privacy"

urlpatterns = [
    path("queue/", views.queue, name="queue"),
    path("queue/new", views.new_request, name="new-request"),
    path("queue/<int:pk>/", views.request_detail, name="request"),
    path("queue/<int:pk>/verify", views.verify, name="verify"),
    path("queue/<int:pk>/start", views.start, name="start"),
    path("queue/<int:pk>/fulfil", views.fulfil, name="fulfil"),
    path("queue/<int:pk>/extend", views.extend, name="extend"),
    path("queue/<int:pk>/refuse", views.refuse, name="refuse"),
    path("queue/<int:pk>/rectify", views.rectify, name="rectify"),
    path("queue/<int:pk>/package", views.package, name="package"),
    path("audit/", views.audit_log, name="audit"),
]
