"""Builder processes: render, track, build and DKIM-sign campaign messages off the event loop.

One worker process runs the database thread and the event loop under one GIL.  Building a 10 KB
message (render, tracking, MIME bytes) and signing it (dkimpy's canonicalisation in Python, the
RSA step in OpenSSL) costs about as much CPU as sending it; done in the event loop's thread it
caps a worker at one core.  With ``TIDINGS_DELIVERY_BUILDERS`` = N (or "auto": one per core),
the database thread hands each claimed batch, as plain values, to a pool of N processes
(``concurrent.futures.ProcessPoolExecutor``, spawned: no forked database connections or
threads); each compiles the campaign once (``build_process``), builds its slice, and the built
messages go to the senders.  Only campaign mail to transports that take bytes (SMTP) goes this
way; one-off messages and other transports are built in the event loop as before.

Crash safety is unchanged: a message is built before it is sent, a row is marked sent only after
the server accepted it, and a row being built counts against the in-flight window like any
other.  A builder that dies takes nothing with it: its slice is released (no attempt spent) and
claimed again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from django.conf import settings

from .. import build_process
from ..queue import Result
from ..transports.base import Email
from .context import CampaignContext, Job
from .dispatcher import TEMPLATE

logger = logging.getLogger("tidings.campaigns.engine")

SLICE = 25  # messages per task: small enough to spread a claim over the processes


def builder_count(configured: int) -> int:
    return max(0, min(configured, 4 * (os.cpu_count() or 1)))


class BuilderPool:
    def __init__(self, processes: int) -> None:
        overrides = {
            name: getattr(settings, name)
            for name in (
                "SECRET_KEY",
                "SECRET_KEY_FALLBACKS",
                "TIDINGS_BASE_URL",
                "TIDINGS_UNSUBSCRIBE_MAILTO",
                "TIDINGS_POLICY",
            )
        }
        self.processes = processes
        self.executor = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=build_process.start,
            initargs=(overrides,),
        )

    def build(
        self, context: CampaignContext, jobs: list[Job], done: Callable[[list[Job]], None]
    ) -> None:
        """Build ``jobs`` in the pool; ``done`` gets each slice when it is ready (called in the
        pool's thread), every job with its ``email`` or its ``failure``.  Jobs of different A/B
        variants go in different slices, each with its variant's recipe."""
        by_recipe: dict[str, list[Job]] = {}
        for job in jobs:
            by_recipe.setdefault(context.messages_for(job.row).recipe.key, []).append(job)
        for group in by_recipe.values():
            self._build(context, group, done)

    def _build(
        self, context: CampaignContext, jobs: list[Job], done: Callable[[list[Job]], None]
    ) -> None:
        recipe = context.messages_for(jobs[0].row).recipe
        for start in range(0, len(jobs), SLICE):
            part = jobs[start : start + SLICE]
            payloads = [
                (
                    job.row.id,
                    job.contact.pk,
                    job.contact.name,
                    job.contact.email,
                    job.contact.company,
                    job.contact.job_title,
                    job.contact.attributes,
                    job.track,
                )
                for job in part
            ]
            future = self.executor.submit(build_process.build_batch, recipe, payloads)
            future.add_done_callback(_finisher(context, part, done))

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _finisher(
    context: CampaignContext, jobs: list[Job], done: Callable[[list[Job]], None]
) -> Callable[[Future], None]:
    def finished(future: Future) -> None:
        try:
            outputs = future.result()
        except BaseException as exc:  # the pool stopped or a builder died: nothing was sent
            if not future.cancelled():
                logger.warning("a message builder failed (%s); rows released", type(exc).__name__)
            for job in jobs:
                job.failure = Result(job.row, "released", delay=1.0)
        else:
            for job, output in zip(jobs, outputs, strict=True):
                _take(context, job, output)
        done(jobs)

    return finished


def _take(context: CampaignContext, job: Job, output: tuple[Any, ...]) -> None:
    outcome = output[0]
    if outcome == "template":
        job.failure = Result(job.row, "released", error=output[1], kind=TEMPLATE)
        return
    if outcome == "failed":
        job.failure = Result(job.row, "failed", error=output[1])
        return
    _, mail_from, recipient, message_id, subject, smtputf8, data = output
    messages = context.messages_for(job.row)
    email = Email(
        mail_from=mail_from,
        recipient=recipient,
        message_id=message_id,
        from_header=messages.from_header,
        subject=subject,
        text="",
        html="",
        headers=messages.headers,
        smtputf8=smtputf8,
    )
    email.data = data

    def rebuild() -> bytes:
        # A server without 8BITMIME (rare): built again here, with 7-bit encodings.
        again = context.email_for(job, True)
        assert again.rebuild is not None
        return again.rebuild()

    email.rebuild = rebuild
    job.email = email
