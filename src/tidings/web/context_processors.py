from django.http import HttpRequest

from tidings.policy import get_policy


def tidings(request: HttpRequest) -> dict:
    """What every page's layout needs: the controller's name for titles and footers."""
    return {"controller": get_policy().controller}
