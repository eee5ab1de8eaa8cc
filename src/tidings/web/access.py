"""Who may use the operator interface.

Operators are staff users.  A visitor who is not signed in is sent to the sign-in page (with
``?next=``); someone signed in without staff status is refused with 403 rather than sent back to
sign in, which would loop.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

View = Callable[..., HttpResponse]


def operator_required(view: View) -> View:
    """Decorate a view so only active staff users reach it."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and user.is_staff):
            raise PermissionDenied("The operator interface is for staff users.")
        return view(request, *args, **kwargs)

    return wrapper
