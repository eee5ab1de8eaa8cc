"""The size of a request from someone who is not signed in.

Django refuses a form body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``TIDINGS_MAX_FORM_BYTES``), but
not the files in a multipart body: those stream to a temporary file, whatever their size.  No
public page takes a file (uploads are operators': imports, pictures, DMARC reports, the logo, and
the API's imports), yet every public form that reads its POST (the sign-up forms most of all:
they take posts from other sites) wrote whatever was sent to the disk before answering.  A body
declared larger than the limit is refused here, before it is read, unless an operator is signed
in or the request carries an API token (their uploads have their own limit,
``TIDINGS_MAX_IMPORT_BYTES``)."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse


def _may_upload(request: HttpRequest) -> bool:
    if request.path.startswith("/api/") and request.headers.get("Authorization", "").startswith(
        "Bearer "
    ):
        return True  # the API checks the token before it reads the body
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


def limit_anonymous_bodies(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Middleware (after authentication): a 413 (``RequestDataTooBig``, the 400 handler's page or
    problem document) for a body over the form limit from anyone but an operator."""

    def middleware(request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0
        if limit is not None and size > limit and not _may_upload(request):
            raise RequestDataTooBig("a body over the form limit from someone not signed in")
        return get_response(request)

    return middleware
