from django.http import HttpRequest

from tidings.lib.access import ROLES, operator_roles
from tidings.policy import get_policy


def tidings(request: HttpRequest) -> dict:
    """What every page's layout needs: the controller's name for titles and footers, and the
    signed-in operator's permissions (the navigation offers only what they may open)."""
    user = getattr(request, "user", None)
    perms = set().union(*(ROLES[r] for r in operator_roles(user))) if user is not None else set()
    from .branding import for_request
    from .navigation import navigation

    staff = bool(perms)
    return {
        "controller": get_policy().controller,
        "operator_permissions": perms,
        "navigation": navigation(request) if staff else [],
        "branding": for_request(request),
    }
