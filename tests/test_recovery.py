"""Nothing stuck, nothing doubled: the reaper recovers what a killed worker or a lost task left
behind, and callbacks are only hints, confirmed with the task query."""

import base64
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from imageedits.edits import housekeeping, images, pipeline, services
from imageedits.edits.models import Edit, Submission

from .conftest import make_png, on_rq, queued, run_edit, run_tasks, wait_for_task_record

pytestmark = pytest.mark.django_db


def create(owner, candidates=1) -> Edit:
    new = services.NewEdit(
        "blur it", "gpt-image-2", "", [images.reencode(make_png())], [], candidates=candidates
    )
    return services.create_edit(owner, new)


def tasks_named(name: str) -> int:
    return len(queued(name))


def test_a_request_whose_worker_died_is_sent_again(alice, simulator):
    edit = create(alice)
    edit.mark_running()
    submission = edit.submissions.get()
    submission.mark_running()  # ... and then the worker was killed
    Submission.objects.filter(pk=submission.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert housekeeping.reap()["worker_lost"] == 1
    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED
    assert "worker running this edit stopped" in submission.error_message
    assert tasks_named("run_submission") == 1

    pipeline.run_submission.call(submission.pk)  # what the worker does with that task
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED and edit.results.count() == 1


def test_a_request_whose_workers_keep_dying_fails_in_the_end(alice, settings):
    settings.UPSTREAM_ATTEMPTS = 1
    edit = create(alice)
    edit.mark_running()
    submission = edit.submissions.get()
    submission.mark_running()
    Submission.objects.filter(pk=submission.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    housekeeping.reap()
    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED
    assert "worker running this edit stopped" in edit.error_message


def test_a_live_lease_is_left_alone(alice):
    edit = create(alice)
    edit.mark_running()
    edit.submissions.get().mark_running()
    assert housekeeping.reap()["worker_lost"] == 0


def test_an_edit_whose_task_was_lost_is_queued_again(alice, settings):
    settings.REAP_STALE_AFTER = 60
    edit = create(alice)  # its task never reached the queue: no on_commit in this test
    assert housekeeping.reap()["requeued_edits"] == 0  # not stale yet
    Edit.objects.filter(pk=edit.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    assert housekeeping.reap()["requeued_edits"] == 1
    assert tasks_named("start_edit") == 1
    assert housekeeping.reap()["requeued_edits"] == 0  # queued again once, not on every pass


def test_a_request_stranded_in_a_running_edit_is_queued_again(alice, settings):
    settings.REAP_STALE_AFTER = 60
    edit = create(alice, candidates=2)
    edit.mark_running()  # the worker died before sending the requests
    Edit.objects.filter(pk=edit.pk).update(started_at=timezone.now() - timedelta(minutes=5))

    assert housekeeping.reap()["requeued_requests"] == 2
    assert tasks_named("run_submission") == 2
    for submission in edit.submissions.all():
        pipeline.run_submission.call(submission.pk)
    assert Edit.objects.get(pk=edit.pk).results.count() == 2


def test_a_request_whose_checks_were_lost_is_checked(alice, settings, simulator):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"
    settings.CALLBACK_GIVE_UP_AFTER = 0
    settings.REAP_STALE_AFTER = 0
    edit = create(alice)
    run_edit(edit)
    submission = edit.submissions.get()
    Submission.objects.filter(pk=submission.pk).update(
        submitted_at=timezone.now() - timedelta(minutes=1)
    )
    assert housekeeping.reap()["late_checks"] == 1
    assert Edit.objects.get(pk=edit.pk).is_active  # the reaper only queues the check
    run_tasks()
    assert not Edit.objects.get(pk=edit.pk).is_active


def test_the_reap_command_runs_a_pass(alice, capsys):
    edit = create(alice)
    Edit.objects.filter(pk=edit.pk).update(created_at=timezone.now() - timedelta(hours=1))
    call_command("reap")
    assert "requeued_edits: 1" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)  # two candidates: requests go from two threads
def test_a_task_run_twice_stores_its_results_once(alice, simulator):
    edit = create(alice, candidates=2)
    run_edit(edit)
    run_edit(edit)
    for submission in edit.submissions.all():
        pipeline.run_submission.call(submission.pk)
    assert sum(r["path"].endswith("/images/edits") for r in simulator.received) == 2
    assert Edit.objects.get(pk=edit.pk).results.count() == 2


# --- Callbacks are hints ---------------------------------------------------------------------


def waiting_for_callback(owner, settings, simulator) -> Submission:
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # the simulator's own callback is lost
    edit = create(owner)
    run_edit(edit)
    submission = edit.submissions.get()
    submission.set_callback_secret("s3cret")
    return submission


def test_a_forged_success_callback_is_replaced_by_the_task_record(
    client, alice, settings, simulator
):
    submission = waiting_for_callback(alice, settings, simulator)
    wait_for_task_record(submission)
    forged = make_png(10, 10, color=(0, 255, 0))
    payload = {
        "success": True,
        "task_id": submission.task_id,
        "data": {"data": [{"b64_json": base64.b64encode(forged).decode()}]},
    }
    client.post(reverse("edit-callback", args=[submission.pk, "s3cret"]), payload,
                "application/json")  # fmt: skip
    run_tasks()

    result = Edit.objects.get().results.get()
    assert (result.width, result.height) == (64, 48)  # the real result, not the forged 10x10


def test_a_forged_failure_callback_does_not_fail_a_good_edit(client, alice, settings, simulator):
    submission = waiting_for_callback(alice, settings, simulator)
    wait_for_task_record(submission)
    payload = {"success": False, "error": {"code": "forbidden", "message": "nope"}}
    client.post(reverse("edit-callback", args=[submission.pk, "s3cret"]), payload,
                "application/json")  # fmt: skip
    run_tasks()
    assert Edit.objects.get().status == Edit.Status.SUCCEEDED


def test_an_early_callback_waits_for_the_task_record(client, alice, settings, simulator):
    simulator.config.latency = 3
    submission = waiting_for_callback(alice, settings, simulator)
    payload = {"success": True, "data": {"data": [{"b64_json": "AAAA"}]}}
    client.post(reverse("edit-callback", args=[submission.pk, "s3cret"]), payload,
                "application/json")  # fmt: skip
    assert Edit.objects.get().is_active
    assert tasks_named("check_submission") == 2  # the usual late check, and one soon

    run_tasks()  # the record is not ready yet: look again in seconds, not in a minute
    soon = min(task.run_after for task in queued("check_submission"))
    assert soon - timezone.now() <= timedelta(seconds=6)


def test_a_worker_lost_after_the_upstream_answered_is_not_paid_for_twice(alice, simulator):
    """The answer came (and was billed), then the worker died before storing the results: the
    reaper has them read from the task record instead of sending the request again."""
    edit = create(alice)
    edit.mark_running()
    submission = edit.submissions.get()
    submission.mark_running()
    from imageedits.edits import upstream

    answer = upstream.submit(pipeline._upstream_request(submission))
    submission.mark_answered(answer.task_id, answer.trace_id)  # ... and then the worker died
    Submission.objects.filter(pk=submission.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert housekeeping.reap()["worker_lost"] == 1
    assert tasks_named("check_submission") == 1 and tasks_named("run_submission") == 0
    run_tasks()
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED and edit.results.count() == 1
    assert sum(r["path"].endswith("/images/edits") for r in simulator.received) == 1


def test_a_job_that_times_out_is_sent_again_like_a_lost_worker(
    alice, simulator, monkeypatch, settings
):
    """RQ stops a job past its timeout by raising inside it; the request goes back to the
    queue as a try of its own, and the job itself is reported failed."""
    from imageedits.edits import upstream

    def stopped(request):
        raise pipeline.JobTimedOut("Task exceeded maximum timeout value (600 seconds)")

    settings.RETRY_BASE_DELAY = 0
    edit = create(alice)
    edit.mark_running()
    submission = edit.submissions.get()
    monkeypatch.setattr(upstream, "submit", stopped)
    with pytest.raises(pipeline.JobTimedOut):
        pipeline.run_submission.call(submission.pk)
    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED and submission.attempts == 1
    assert "worker running this edit stopped" in submission.error_message
    assert tasks_named("run_submission") == 1

    monkeypatch.undo()
    run_tasks()
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED and edit.results.count() == 1


def test_a_worker_still_busy_with_a_run_cannot_touch_the_run_after_it(alice):
    """The reaper failed a request whose slow worker was still alive, the person chose "Try
    again": the slow worker's late news changes nothing of the new run."""
    edit = create(alice)
    edit.mark_running()
    slow = edit.submissions.get()
    slow.mark_running()
    Submission.objects.filter(pk=slow.pk).update(status=Submission.Status.FAILED)
    Edit.objects.filter(pk=edit.pk).update(status=Edit.Status.FAILED)
    assert Edit.objects.get(pk=edit.pk).rerun()

    assert not slow.mark_failed("timeout", "late news from the first run")
    assert not slow.mark_succeeded("task", "trace", 1.0)
    fresh = Submission.objects.get(pk=slow.pk)
    assert fresh.status == Submission.Status.QUEUED and fresh.tries == 0


def test_a_worker_that_lost_its_lease_cannot_overwrite_the_newer_attempt(alice, simulator):
    edit = create(alice)
    edit.mark_running()
    stale = edit.submissions.get()
    stale.mark_running()  # attempt 1, then this worker stalls
    Submission.objects.filter(pk=stale.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    housekeeping.reap()  # attempt 1 is taken for dead: the request goes back to the queue
    pipeline.run_submission.call(stale.pk)  # attempt 2 succeeds
    assert Edit.objects.get(pk=edit.pk).status == Edit.Status.SUCCEEDED

    # The stalled worker wakes up with attempt 1's late news: it changes nothing.
    assert not stale.mark_failed("api_error", "late news from attempt 1")
    assert not stale.mark_retrying("api_error", "late", timezone.now())
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED and edit.results.count() == 1


def test_an_edit_whose_requests_all_ended_unnoticed_is_settled(alice, settings):
    settings.REAP_STALE_AFTER = 60
    edit = create(alice)
    edit.mark_running()
    submission = edit.submissions.get()
    submission.mark_running()
    submission.mark_failed("forbidden", "refused")  # ... and the worker died before settling
    Edit.objects.filter(pk=edit.pk).update(started_at=timezone.now() - timedelta(minutes=5))

    assert housekeeping.reap()["settled"] == 1
    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED and edit.error_message == "refused"


def test_a_check_left_from_before_a_rerun_does_nothing(alice, settings, simulator):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"
    simulator.inject("forbidden")
    edit = create(alice)
    run_edit(edit)
    assert Edit.objects.get(pk=edit.pk).status == Edit.Status.FAILED
    old = edit.submissions.get()
    old_task = "task-of-the-first-run"
    Submission.objects.filter(pk=old.pk).update(task_id=old_task)

    assert Edit.objects.get(pk=edit.pk).rerun()
    fresh = edit.submissions.get()
    assert (fresh.task_id, fresh.callback_secret_hash, fresh.submitted_at) == ("", "", None)
    pipeline.check_submission.call(fresh.pk, old_task)  # the first run's late check
    assert Submission.objects.get(pk=fresh.pk).status == Submission.Status.QUEUED


def test_a_failed_task_record_not_worth_retrying_fails_the_request(alice, settings, simulator):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"
    missing = f"{simulator.url}/files/no-such-image.png"  # the upstream's fetch fails
    edit = services.create_edit(alice, services.NewEdit("blur", "gpt-image-2", "", [], [missing]))
    run_edit(edit)
    submission = edit.submissions.get()
    wait_for_task_record(submission)
    pipeline.check_submission.call(submission.pk)
    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED
    assert "could not download one of the image URLs" in edit.error_message
    assert tasks_named("run_submission") == 0


def test_a_task_the_upstream_lost_is_sent_again(alice, settings, simulator):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"
    settings.RETRY_BASE_DELAY = 0
    edit = create(alice)
    run_edit(edit)
    submission = edit.submissions.get()
    wait_for_task_record(submission)
    simulator.reset()  # the upstream forgets its tasks
    Submission.objects.filter(pk=submission.pk).update(
        submitted_at=timezone.now() - timedelta(minutes=1)
    )
    pipeline.check_submission.call(submission.pk)
    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED
    assert "no record of this edit" in submission.error_message
    run_tasks()  # sent again; its callback is lost too, so it waits
    submission.refresh_from_db()
    assert submission.attempts == 2 and submission.status == Submission.Status.RUNNING


@pytest.mark.local_files
def test_orphaned_files_are_swept_once_old_enough(alice, settings, stored_files):
    import os

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    kept = create(alice)  # its input file is referenced
    stray = default_storage.save("results/2026/01/stray.png", ContentFile(make_png()))
    young = default_storage.save("results/2026/01/young.png", ContentFile(make_png()))
    an_hour_ago = time.time() - 3700
    os.utime(default_storage.path(stray), (an_hour_ago, an_hour_ago))

    assert housekeeping.sweep_orphans(timedelta(hours=1)) == 1
    files = stored_files()
    assert stray not in files and young in files
    assert kept.inputs.get().file.name in files


def test_queue_rows_of_dead_workers_are_closed_and_old_rows_deleted(settings):
    from django.tasks import TaskResultStatus

    if on_rq():
        pytest.skip("django-tasks-db's own rows; RQ keeps its records in Redis, with TTLs")
    now = timezone.now()
    rows = {}
    for name, status, started, finished in [
        ("dead", TaskResultStatus.RUNNING, now - timedelta(days=2), None),
        ("running", TaskResultStatus.RUNNING, now - timedelta(minutes=5), None),
        ("old", TaskResultStatus.SUCCESSFUL, now - timedelta(days=15), now - timedelta(days=15)),
        ("recent", TaskResultStatus.FAILED, now - timedelta(days=2), now - timedelta(days=2)),
        ("waiting", TaskResultStatus.READY, None, None),
    ]:
        row_id = pipeline.start_edit.enqueue(0).id
        DBTaskResult.objects.filter(pk=row_id).update(
            status=status, started_at=started, finished_at=finished
        )
        rows[name] = row_id

    assert housekeeping.tidy_task_rows() == {"task_rows_closed": 1, "task_rows_deleted": 1}
    status_of = {str(pk): status for pk, status in DBTaskResult.objects.values_list("pk", "status")}
    assert {name: status_of.get(row_id) for name, row_id in rows.items()} == {
        "dead": TaskResultStatus.FAILED,
        "running": TaskResultStatus.RUNNING,
        "old": None,
        "recent": TaskResultStatus.FAILED,
        "waiting": TaskResultStatus.READY,
    }
    assert housekeeping.tidy_task_rows() == {"task_rows_closed": 0, "task_rows_deleted": 0}

    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    assert housekeeping.tidy_task_rows() == {}  # other backends keep their own rows
