from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from tidings.lib.two_factor import session_needs_second_factor

# The Django admin is the superusers' back office; it carries the product's name, not Django's.
admin.site.site_header = "tidings"
admin.site.site_title = "tidings"
admin.site.index_title = "Administration"


def _admin_has_permission(request: HttpRequest) -> bool:
    """The admin is for superusers only, and only once their second factor is verified."""
    user = request.user
    return bool(
        user.is_active
        and user.is_staff
        and user.is_superuser
        and session_needs_second_factor(request) is None
    )


def _admin_login(request: HttpRequest, extra_context: object = None) -> HttpResponse:
    """The admin has no sign-in page of its own: ours counts failures (django-axes) and asks for
    the second factor, which the admin's would skip."""
    next_url = request.GET.get(REDIRECT_FIELD_NAME) or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        # Only this site: /admin/login/?next=https://elsewhere was an open redirect for a
        # signed-in superuser (a link in a phishing mail that lands on a look-alike page).
        next_url = reverse("admin:index")
    if request.user.is_authenticated:
        step = session_needs_second_factor(request)
        if step is not None:
            target = reverse("two-factor-verify" if step == "verify" else "two-factor")
            return HttpResponseRedirect(f"{target}?{urlencode({'next': next_url})}")
        if _admin_has_permission(request):
            return HttpResponseRedirect(next_url)
        raise PermissionDenied("The admin is for superusers.")
    return redirect_to_login(next_url)


admin.site.has_permission = _admin_has_permission  # type: ignore[method-assign]  # our sign-in
admin.site.login = _admin_login  # type: ignore[method-assign]  # replaces the admin's own
