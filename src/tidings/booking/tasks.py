"""Demo booking's background work (``django.tasks``, run by ``tidings worker``; registered with
``lib.periodic`` in ``BookingConfig.ready``)."""

from __future__ import annotations

from django.tasks import task


@task()
def demo_reminders_task() -> int:
    """Every minute: email the demo reminders that are due (``do_send_demo_reminders``)."""
    from .actions import do_send_demo_reminders

    return do_send_demo_reminders()
