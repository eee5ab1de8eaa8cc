import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
application = get_asgi_application()

# What `tidings serve` and `tidings worker` refuse (web/checks.py: production without a real
# secret key, with debug on...), refused here too when another server loads this module.
from tidings.web.checks import refuse_unsafe_start  # noqa: E402

refuse_unsafe_start()
