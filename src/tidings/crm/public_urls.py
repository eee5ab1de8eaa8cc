"""The public page of the CRM: the website's contact form."""

from django.urls import path

from . import public_views

app_name = "crm_public"

urlpatterns = [
    path("contact", public_views.contact, name="contact"),
    path("contact/sent", public_views.contact_sent, name="contact-sent"),
]
