"""python -m tests.web.enqueue_slow_task STARTED RELEASE: queue ``slow_tasks.wait_for_file``."""

import sys

import django

django.setup()

from tests.web.slow_tasks import wait_for_file  # noqa: E402  (after django.setup())

wait_for_file.enqueue(sys.argv[1], sys.argv[2])
