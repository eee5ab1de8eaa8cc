"""A running import's lease: it is interrupted once its heartbeat is older than the lease or its
process is gone from this host; the pages say so with the command that resumes it; a live one
is not resumed."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from tidings.audience.imports import create_import
from tidings.audience.imports.lease import is_interrupted, lease_seconds
from tidings.audience.models import Import, MailingList
from tidings.lib.processes import this_host

from .import_helpers import CONSENT, do_import, write


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"


@pytest.fixture
def news(db):
    return MailingList.objects.create(name="News", topic="product news")


def _running(news, **fields) -> Import:
    imp = create_import(mailing_list=news, consent_source=CONSENT, original_filename="a b.csv")
    Import.objects.filter(pk=imp.pk).update(
        status=Import.Status.RUNNING, started_at=timezone.now(), **fields
    )
    imp.refresh_from_db()
    return imp


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def test_an_import_running_elsewhere_is_interrupted_once_its_heartbeat_is_older_than_the_lease(
    news,
):
    with time_machine.travel("2026-12-07 10:00Z", tick=False):
        imp = _running(news, heartbeat_at=timezone.now(), run_host="other-host", run_pid=4321)
        assert not is_interrupted(imp)
        later = timezone.now() + timedelta(seconds=lease_seconds() - 1)
        assert not is_interrupted(imp, later)
        assert is_interrupted(imp, later + timedelta(seconds=2))


def test_an_import_whose_process_is_gone_from_this_host_is_interrupted_at_once(news):
    alive = _running(news, heartbeat_at=timezone.now(), run_host=this_host(), run_pid=os.getpid())
    assert not is_interrupted(alive)
    gone = _running(news, heartbeat_at=timezone.now(), run_host=this_host(), run_pid=_dead_pid())
    assert is_interrupted(gone)


def test_the_pages_show_an_interrupted_import_and_the_command_that_resumes_it(owner_client, news):
    stale = timezone.now() - timedelta(seconds=lease_seconds() + 5)
    imp = _running(news, heartbeat_at=stale, run_host="other-host", run_pid=4321)
    page = owner_client.get(reverse("audience:imports")).content.decode()
    assert 'data-label="Status">Interrupted</td>' in page
    detail = owner_client.get(reverse("audience:import", args=[imp.pk])).content.decode()
    assert "This import was interrupted" in detail
    assert f"<code>tidings import contacts &#x27;a b.csv&#x27; --resume {imp.pk}</code>" in detail
    assert 'http-equiv="refresh"' not in detail  # nothing more will happen by itself
    progress = owner_client.get(
        reverse("audience:import", args=[imp.pk]), headers={"Accept": "application/json"}
    ).json()
    assert progress["status"] == "interrupted" and progress["done"] is True


def test_a_live_import_is_not_resumed(news, tmp_path):
    imp = _running(news, heartbeat_at=timezone.now(), run_host=this_host(), run_pid=os.getpid())
    path = write(tmp_path, "email,name\nann@example.org,Ann\n")
    with pytest.raises(CommandError, match=f"import {imp.pk} is still running"):
        call_command("import", "contacts", str(path), "--resume", str(imp.pk))
    imp.refresh_from_db()
    assert imp.status == Import.Status.RUNNING and imp.rows_read == 0


def test_a_finished_import_is_not_resumed(news, tmp_path):
    path = write(tmp_path, "email,name\nann@example.org,Ann\n")
    imp = do_import(path, news)
    with pytest.raises(CommandError, match="finished: not resumed"):
        call_command("import", "contacts", str(path), "--resume", str(imp.pk))


def test_the_worker_resumes_a_running_import_with_the_counts_of_what_it_had_written(news, tmp_path):
    """A worker that died mid-import: the task runs it again on the same row; the first run's
    committed counts are carried, so the rows it wrote count as new, not unchanged."""
    from tidings.audience.tasks import import_contacts

    path = write(tmp_path, "email,name\n" + "".join(f"p{n}@example.org,P\n" for n in range(6)))
    first = write(
        tmp_path,
        "email,name\n" + "".join(f"p{n}@example.org,P\n" for n in range(4)),
        name="first.csv",
    )
    imp = do_import(first, news)  # stands for the batches committed before the worker died
    imp.status, imp.stored_file = Import.Status.RUNNING, "upload.csv"
    imp.save()
    (imp.stored_path.parent).mkdir(parents=True, exist_ok=True)
    imp.stored_path.write_bytes(path.read_bytes())
    assert import_contacts.call(imp.pk) == Import.Status.FINISHED
    imp.refresh_from_db()
    assert (imp.rows_read, imp.created, imp.subscribed, imp.unchanged) == (6, 6, 6, 0)
