"""tidings' URLs plus the bench's baseline: a view that answers "hello" and nothing else (the
floor for a Django request through the same middleware on the same server)."""

from django.http import HttpResponse
from django.urls import include, path


def hello(request):
    return HttpResponse(b"hello", content_type="text/plain")


urlpatterns = [path("bench/hello", hello), path("", include("tidings.urls"))]
