"""django-axes' lockout check, for sign-ins that come through a web request."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend


class LockoutBackend(AxesStandaloneBackend):
    """Refuses a locked-out username/address pair before the password is checked.

    Axes insists on a request; ``authenticate()`` called without one (the command line, a shell)
    has no address to lock and no brute-force exposure, so it passes on to the next backend.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
