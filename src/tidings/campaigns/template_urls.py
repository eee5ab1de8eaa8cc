"""Operator pages for layouts and campaign templates (included at campaigns/templates/)."""

from django.urls import path

from . import template_views

app_name = "templates_ui"

urlpatterns = [
    path("", template_views.index, name="index"),
    path("new/", template_views.template_edit, name="template-new"),
    path("blocks/preview/", template_views.blocks_preview, name="blocks-preview"),
    path("blocks/pictures/", template_views.blocks_pictures, name="blocks-pictures"),
    path("<int:template_id>/", template_views.template_edit, name="template-edit"),
    path("<int:template_id>/preview/", template_views.template_preview, name="template-preview"),
    path("<int:template_id>/delete/", template_views.template_delete, name="template-delete"),
    path("layouts/new/", template_views.layout_edit, name="layout-new"),
    path("layouts/<int:layout_id>/", template_views.layout_edit, name="layout-edit"),
    path("layouts/<int:layout_id>/preview/", template_views.layout_preview, name="layout-preview"),
    path("layouts/<int:layout_id>/delete/", template_views.layout_delete, name="layout-delete"),
]
