"""The soak test (`make soak`, skipped otherwise): 300 edits against a simulator that fails 20%
of requests in every way it can, worked on by real `db_worker` processes, one of them killed
and replaced midway, with the reaper running. At the end every edit has ended, each succeeded
edit holds exactly its results, and no stored file is orphaned."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection

from imageedits.edits import housekeeping, images, services
from imageedits.edits.models import Edit, InputImage, ResultImage, Submission

from .conftest import SIMULATOR_TOKEN, make_png

ROOT = Path(__file__).resolve().parent.parent
EDITS = int(os.environ.get("SOAK_EDITS", 300))
TIME_LIMIT = float(os.environ.get("SOAK_SECONDS", 300))

pytestmark = [
    pytest.mark.skipif(not os.environ.get("SOAK"), reason="the soak test runs with `make soak`"),
    pytest.mark.django_db(transaction=True),
]


def start(command: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *command], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def stop(process: subprocess.Popen, signum=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signum)
        process.wait(timeout=20)


def test_soak(alice, simulator, settings):
    simulator.config.latency = 0.02
    simulator.config.fault_rate = 0.2
    simulator.config.faults = ("429", "500", "slow", "malformed", "empty", "garbage")
    simulator.config.slow_seconds = 4  # past the workers' 3 s timeout
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "OPENAI_BASE_URL": settings.OPENAI_BASE_URL,
        "OPENAI_API_KEY": SIMULATOR_TOKEN,
        "IMAGE_FETCH_ALLOWED_HOSTS": ",".join(settings.IMAGE_FETCH_ALLOWED_HOSTS),
        "UPSTREAM_TIMEOUT": "3",
        "RESULT_DOWNLOAD_TIMEOUT": "2",
        "LEASE_MARGIN": "2",
        "RETRY_BASE_DELAY": "0.1",
        "RETRY_MAX_DELAY": "1",
        "REAP_STALE_AFTER": "3",
        "DEBUG": "1",
    }
    worker = ["db_worker", "--interval", "0.1", "--no-startup-delay", "--no-reload"]
    workers = [start(worker, env), start(worker, env)]
    reaper = start(["reap", "--every", "1"], env)
    started = time.monotonic()
    try:
        for number in range(EDITS):
            candidates = 2 if number % 10 == 0 else 1
            upload = images.reencode(make_png(48 + number % 16, 40))
            services.create_edit(
                alice,
                services.NewEdit(f"edit {number}: sepia", "gpt-image-2", "", [upload], [],
                                 candidates=candidates),
            )  # fmt: skip
        while Edit.objects.filter(status__in=Edit.ACTIVE).count() > EDITS * 2 // 3:
            assert time.monotonic() - started < TIME_LIMIT, "no progress"
            time.sleep(0.2)
        stop(workers[0], signal.SIGKILL)  # mid-flight, whatever it was doing
        workers[0] = start(worker, env)
        while Edit.objects.filter(status__in=Edit.ACTIVE).exists():
            assert time.monotonic() - started < TIME_LIMIT, "edits are stuck: " + str(
                Counter(Submission.objects.values_list("status", flat=True))
            )
            time.sleep(0.5)
        elapsed = time.monotonic() - started
    finally:
        for process in [*workers, reaper]:
            stop(process)

    statuses = Counter(Edit.objects.values_list("status", flat=True))
    assert sum(statuses.values()) == EDITS
    assert set(statuses) <= {Edit.Status.SUCCEEDED, Edit.Status.FAILED}
    for edit in Edit.objects.prefetch_related("submissions", "results"):
        expected = sum(
            s.n for s in edit.submissions.all() if s.status == Submission.Status.SUCCEEDED
        )
        positions = [result.position for result in edit.results.all()]
        assert len(positions) == expected == len(set(positions)), edit.pk
        if edit.status == Edit.Status.FAILED:
            assert edit.error_message
    # A worker killed between storing a file and committing its row leaves an orphan, which
    # the reaper's sweep deletes after an hour; here, with every process stopped, at once.
    swept = housekeeping.sweep_orphans(timedelta(0))
    referenced = set()
    for row in InputImage.objects.values_list("file", "preview"):
        referenced.update(name for name in row if name)
    for row in ResultImage.objects.values_list("file", "raw_file", "thumbnail", "preview"):
        referenced.update(name for name in row if name)
    stored = {
        str(path.relative_to(settings.MEDIA_ROOT))
        for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()
    }  # fmt: skip
    assert stored == referenced, f"orphans: {sorted(stored - referenced)[:5]}"
    retried = Submission.objects.filter(attempts__gt=1).count()
    print(
        f"\nsoak: {EDITS} edits in {elapsed:.0f} s: {statuses[Edit.Status.SUCCEEDED]} succeeded, "
        f"{statuses[Edit.Status.FAILED]} failed; {retried} requests retried; "
        f"{len(simulator.received)} upstream requests; one worker killed and replaced; "
        f"{swept} orphaned files swept"
    )
