"""Settings for ``tidings worker`` processes started by the tests: the installation's settings,
plus the delivery engine's knobs from the environment (settings.py does not read them all)."""

import os

from tidings.settings import *  # noqa: F403

TIDINGS_SMTP_RATE = os.environ.get("TIDINGS_SMTP_RATE", "")
TIDINGS_SMTP_CONCURRENCY = int(os.environ.get("TIDINGS_SMTP_CONCURRENCY", "10"))
TIDINGS_DELIVERY_WINDOW = int(os.environ.get("TIDINGS_DELIVERY_WINDOW", "200"))
TIDINGS_DELIVERY_CHUNK = int(os.environ.get("TIDINGS_DELIVERY_CHUNK", "100"))
TIDINGS_DELIVERY_LEASE_SECONDS = float(os.environ.get("TIDINGS_DELIVERY_LEASE_SECONDS", "30"))
