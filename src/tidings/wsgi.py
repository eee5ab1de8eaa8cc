import os
from collections.abc import Callable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
application: Callable[..., Any] = get_wsgi_application()

# What `tidings serve` and `tidings worker` refuse (web/checks.py: production without a real
# secret key, with debug on...), refused here too when another server loads this module.
from tidings.web.checks import refuse_unsafe_start  # noqa: E402

refuse_unsafe_start()

# Valid tracking pixels and clicks are answered before Django's middleware (campaigns/
# tracking_wsgi.py); everything else reaches Django as before.
from tidings.campaigns.tracking_wsgi import with_tracking_fast_path  # noqa: E402

application = with_tracking_fast_path(application)

# Page views of the website skip the middleware stack (see tidings/analytics/fastpath.py).
from tidings.analytics.fastpath import wrap as _with_fast_page_views  # noqa: E402

application = _with_fast_page_views(application)

# /healthz, /readyz and /metrics are answered before Django too (tidings/ops/endpoints.py).
from tidings.ops.endpoints import with_ops_endpoints  # noqa: E402

application = with_ops_endpoints(application)

# Screening's engine takes seconds to build (many on a busy machine).  Each web process starts
# building it in the background now, so that the first contact form, booking or reply after a
# restart is not the one that waits for it.
from tidings.policy.screening import warm_up  # noqa: E402

warm_up()
