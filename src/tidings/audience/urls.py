"""Operator pages of the audience app."""

from django.urls import path

from . import views

app_name = "audience"

urlpatterns = [
    path("contacts/", views.contact_list, name="contacts"),
    path("contacts/<int:contact_id>/", views.contact_detail, name="contact"),
    path("contacts/<int:contact_id>/edit/", views.contact_edit, name="contact-edit"),
    path("contacts/<int:contact_id>/lists/", views.contact_lists, name="contact-lists"),
    path("lists/", views.list_index, name="lists"),
    path("lists/new/", views.list_edit, name="list-new"),
    path("lists/<int:list_id>/", views.list_edit, name="list-edit"),
    path("lists/<int:list_id>/close/", views.list_close, name="list-close"),
    path("lists/<int:list_id>/export.csv", views.list_export, name="list-export"),
    path("suppression/", views.suppression_index, name="suppression"),
    path("suppression/remove/", views.suppression_remove, name="suppression-remove"),
]
