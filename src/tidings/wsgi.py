import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
application = get_wsgi_application()

# Valid tracking pixels and clicks are answered before Django's middleware (campaigns/
# tracking_wsgi.py); everything else reaches Django as before.
from tidings.campaigns.tracking_wsgi import with_tracking_fast_path  # noqa: E402

application = with_tracking_fast_path(application)
