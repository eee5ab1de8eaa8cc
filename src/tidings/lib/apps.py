from __future__ import annotations

from django.apps import AppConfig


class LibConfig(AppConfig):
    """The shared library is an app only for its snapshot table (``lib/models.py``)."""

    name = "tidings.lib"
    label = "lib"
    verbose_name = "Shared library"
