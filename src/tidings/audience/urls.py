"""Operator pages of the audience app."""

from django.urls import path

from . import segment_views, tool_views, views

app_name = "audience"

urlpatterns = [
    path("contacts/", views.contact_list, name="contacts"),
    path("contacts/<int:contact_id>/", views.contact_detail, name="contact"),
    path("contacts/<int:contact_id>/edit/", views.contact_edit, name="contact-edit"),
    path("contacts/<int:contact_id>/lists/", views.contact_lists, name="contact-lists"),
    path("contacts/<int:contact_id>/merge/", views.contact_merge, name="contact-merge"),
    path("contacts/<int:contact_id>/consent.csv", tool_views.consent_proof, name="consent-proof"),
    path("imports/", tool_views.import_index, name="imports"),
    path("imports/<int:import_id>/", tool_views.import_detail, name="import"),
    path("imports/<int:import_id>/bad-rows.csv", tool_views.import_report, name="import-report"),
    path("imports/<int:import_id>/columns/", tool_views.import_columns, name="import-columns"),
    path("imports/<int:import_id>/confirm/", tool_views.import_confirm, name="import-confirm"),
    path("imports/<int:import_id>/cancel/", tool_views.import_cancel, name="import-cancel"),
    path("forms/", tool_views.signup_form_index, name="signup-forms"),
    path("forms/new/", tool_views.signup_form_edit, name="signup-form-new"),
    path("forms/<int:form_id>/", tool_views.signup_form_edit, name="signup-form-edit"),
    path("lists/", views.list_index, name="lists"),
    path("lists/new/", views.list_edit, name="list-new"),
    path("lists/<int:list_id>/", views.list_edit, name="list-edit"),
    path("lists/<int:list_id>/close/", views.list_close, name="list-close"),
    path("lists/<int:list_id>/export.csv", views.list_export, name="list-export"),
    path("segments/", segment_views.segment_index, name="segments"),
    path("segments/new/", segment_views.segment_edit, name="segment-new"),
    path("segments/count/", segment_views.segment_count, name="segment-count"),
    path("segments/<int:segment_id>/", segment_views.segment_edit, name="segment-edit"),
    path("segments/<int:segment_id>/delete/", segment_views.segment_delete, name="segment-delete"),
    path(
        "segments/<int:segment_id>/export.csv", segment_views.segment_export, name="segment-export"
    ),
    path("suppression/", views.suppression_index, name="suppression"),
    path("suppression/remove/", views.suppression_remove, name="suppression-remove"),
]
