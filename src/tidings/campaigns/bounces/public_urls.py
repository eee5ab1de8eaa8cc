"""Public: ESPs post their bounce and complaint events here (see ``webhooks``)."""

from django.urls import path

from .webhooks import VIEWS

app_name = "anymail"
urlpatterns = [
    path(f"{esp}/tracking/", view, name=f"{esp}_tracking_webhook") for esp, view in VIEWS.items()
]
