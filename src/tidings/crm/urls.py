"""Operator pages of the CRM (under /crm/)."""

from django.urls import path

from . import views

app_name = "crm"

urlpatterns = [
    path("", views.index, name="index"),
    path("organisations/", views.organisation_list, name="organisations"),
    path("organisations/new/", views.organisation_edit, name="organisation-new"),
    path("organisations/<int:pk>/", views.organisation_detail, name="organisation"),
    path("organisations/<int:pk>/edit/", views.organisation_edit, name="organisation-edit"),
    path("enquiries/", views.enquiry_list, name="enquiries"),
    path("enquiries/new/", views.enquiry_new, name="enquiry-new"),
    path("enquiries/<int:pk>/", views.enquiry_detail, name="enquiry"),
    path("enquiries/<int:pk>/edit/", views.enquiry_edit, name="enquiry-edit"),
    path("enquiries/<int:pk>/contacted/", views.enquiry_contacted, name="enquiry-contacted"),
    path("orders/", views.order_list, name="orders"),
    path("orders/new/", views.order_new, name="order-new"),
    path("orders/<int:pk>/", views.order_detail, name="order"),
    path("orders/<int:pk>/edit/", views.order_edit, name="order-edit"),
    path("contracts/", views.contract_list, name="contracts"),
    path("contracts/new/", views.contract_edit, name="contract-new"),
    path("contracts/<int:pk>/", views.contract_detail, name="contract"),
    path("contracts/<int:pk>/edit/", views.contract_edit, name="contract-edit"),
    path("support-contacts/", views.support_contact_list, name="support-contacts"),
    path("support-contacts/new/", views.support_contact_new, name="support-contact-new"),
    path("support-contacts/<int:pk>/", views.support_contact_detail, name="support-contact"),
    path(
        "support-contacts/<int:pk>/edit/",
        views.support_contact_edit,
        name="support-contact-edit",
    ),
    path("support-requests/", views.support_request_list, name="support-requests"),
    path("support-requests/new/", views.support_request_new, name="support-request-new"),
    path("support-requests/<int:pk>/", views.support_request_detail, name="support-request"),
    path(
        "support-requests/<int:pk>/edit/",
        views.support_request_edit,
        name="support-request-edit",
    ),
    path("<str:section>/<int:pk>/keep-longer/", views.extend, name="extend"),
]
