from django.urls import path

from . import views

app_name = "analytics"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("snippet", views.snippet, name="snippet"),
    path("dont-count-me", views.dont_count_me, name="dont-count-me"),
]
