"""The journey mail's open pixel and click redirect (namespace ``journey-track``)."""

from tidings.lib.urltokens import token_path

from . import tracking_views

app_name = "journey-track"

urlpatterns = [
    token_path("t/j/o/<str:token>", tracking_views.open_pixel, name="open"),
    token_path("t/j/c/<str:token>", tracking_views.click, name="click"),
]
