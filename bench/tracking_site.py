"""The bench's settings: tidings' own, with ``bench.tracking_urls`` as the URLconf.

``bench.tracking`` serves ``tidings.wsgi`` with ``DJANGO_SETTINGS_MODULE=bench.tracking_site``, so
the pixel and click endpoints run with every middleware they have in production, and so does the
baseline "hello" view.  Nothing here ships in the product.
"""

from tidings.settings import *  # noqa: F403

ROOT_URLCONF = "bench.tracking_urls"
