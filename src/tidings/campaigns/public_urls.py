"""The public archive of sent campaigns (only those an operator chose to show) and its feed;
``tracking_patterns``: the open pixel and click redirect (namespace ``track``)."""

from django.urls import path

from tidings.lib.urltokens import token_path

from . import public_views, tracking_views

app_name = "archive"

urlpatterns = [
    path("archive/", public_views.archive_index, name="index"),
    path("archive/feed.xml", public_views.ArchiveFeed(), name="feed"),
    path("archive/<int:campaign_id>/", public_views.archive_campaign, name="campaign"),
]

tracking_patterns = (
    [
        token_path("t/o/<str:token>", tracking_views.open_pixel, name="open"),
        token_path("t/c/<str:token>", tracking_views.click, name="click"),
    ],
    "track",
)
