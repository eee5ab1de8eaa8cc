from django.urls import path

from . import views

app_name = "booking"

urlpatterns = [
    path("", views.upcoming, name="upcoming"),
    path("<int:pk>/", views.detail, name="detail"),
    path("availability/", views.availability, name="availability"),
    path("feed/", views.feed_token, name="feed-token"),
]
