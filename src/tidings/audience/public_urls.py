"""Public pages of the audience app: sign-up forms, confirmation, preference centre, unsubscribe.

Short paths, because they travel in emails: /f/<slug>, /c/<token>, /p/<token>, /u/<token>.
"""

from django.urls import path

from tidings.lib.urltokens import token_path

from . import public_views

app_name = "public"

urlpatterns = [
    path("f/<slug:slug>", public_views.signup, name="signup"),
    path("f/<slug:slug>/thanks", public_views.signup_done, name="signup-done"),
    token_path("c/<str:token>", public_views.confirm, name="confirm"),
    path("p/", public_views.preferences_link, name="preferences-link"),
    path("p/sent", public_views.preferences_link_sent, name="preferences-link-sent"),
    token_path("p/<str:token>", public_views.preferences, name="preferences"),
    token_path("u/<str:token>", public_views.unsubscribe, name="unsubscribe"),
]
