from django.urls import path

from . import views

app_name = "media"

urlpatterns = [
    path("", views.index, name="index"),
    path("<int:image_id>/", views.image_detail, name="image"),
    path("<int:image_id>/delete/", views.image_delete, name="image-delete"),
]
