from django.urls import path

from . import views

app_name = "api_settings"

urlpatterns = [
    path("tokens/", views.token_index, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("webhooks/", views.webhook_index, name="webhooks"),
    path("webhooks/<int:endpoint_id>/", views.webhook_detail, name="webhook"),
    path("webhooks/<int:endpoint_id>/toggle/", views.webhook_toggle, name="webhook-toggle"),
    path("webhooks/<int:endpoint_id>/delete/", views.webhook_delete, name="webhook-delete"),
]
