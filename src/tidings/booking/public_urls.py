"""Public demo pages: booking, the signed links in the emails, and the hosts' calendar feeds."""

from django.urls import path

from tidings.lib.urltokens import token_path

from . import public_views

app_name = "booking_public"

urlpatterns = [
    path("demo/", public_views.book, name="book"),
    path("demo/booked", public_views.booked, name="booked"),
    token_path("demo/change/<str:token>", public_views.reschedule, name="reschedule"),
    token_path("demo/change/<str:token>/cancel", public_views.cancel, name="cancel"),
    token_path("demo/feed/<str:token>.ics", public_views.feed, name="feed"),
]
