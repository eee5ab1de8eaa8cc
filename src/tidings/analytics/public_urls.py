"""Public endpoints the company's website calls: statistics and the cookie banner."""

from django.urls import path

from . import public_views

app_name = "analytics_public"

urlpatterns = [
    path("a/collect", public_views.collect, name="collect"),
    path("a/p.gif", public_views.pixel, name="pixel"),
    path("a/banner.json", public_views.banner_json, name="banner"),
    path("a/consent", public_views.consent, name="consent"),
]
