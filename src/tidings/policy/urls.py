from django.urls import path

from . import views

app_name = "policy"

urlpatterns = [
    path("privacy", views.privacy_notice, name="notice"),
    path("privacy.json", views.privacy_json, name="notice-json"),
]
