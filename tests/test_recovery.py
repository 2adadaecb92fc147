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

from imageedits.edits import images, services
from imageedits.edits.models import Edit, Submission

from .conftest import make_png

pytestmark = pytest.mark.django_db


def create(owner, candidates=1) -> Edit:
    new = services.NewEdit(
        "blur it", "gpt-image-2", "", [images.reencode(make_png())], [], candidates=candidates
    )
    return services.create_edit(owner, new)


def tasks_named(name: str) -> int:
    return DBTaskResult.objects.filter(task_path=f"imageedits.edits.tasks.{name}").count()


def test_a_request_whose_worker_died_is_sent_again(alice, simulator):
    edit = create(alice)
    edit.mark_running()
    submission = edit.submissions.get()
    submission.mark_running()  # ... and then the worker was killed
    Submission.objects.filter(pk=submission.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert services.reap()["worker_lost"] == 1
    submission.refresh_from_db()
    assert submission.status == Submission.Status.QUEUED
    assert "worker running this edit stopped" in submission.error_message
    assert tasks_named("retry_submission") == 1

    services.retry_submission(submission.pk)  # what the worker does with that task
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
    services.reap()
    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED
    assert "worker running this edit stopped" in edit.error_message


def test_a_live_lease_is_left_alone(alice):
    edit = create(alice)
    edit.mark_running()
    edit.submissions.get().mark_running()
    assert services.reap()["worker_lost"] == 0


def test_an_edit_whose_task_was_lost_is_queued_again(alice, settings):
    settings.REAP_STALE_AFTER = 60
    edit = create(alice)  # its task never reached the queue: no on_commit in this test
    assert services.reap()["requeued_edits"] == 0  # not stale yet
    Edit.objects.filter(pk=edit.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    assert services.reap()["requeued_edits"] == 1
    assert tasks_named("run_edit") == 1
    assert services.reap()["requeued_edits"] == 0  # queued again once, not on every pass


def test_a_request_stranded_in_a_running_edit_is_queued_again(alice, settings):
    settings.REAP_STALE_AFTER = 60
    edit = create(alice, candidates=2)
    edit.mark_running()  # the worker died before sending the requests
    Edit.objects.filter(pk=edit.pk).update(started_at=timezone.now() - timedelta(minutes=5))

    assert services.reap()["requeued_requests"] == 2
    assert tasks_named("retry_submission") == 2
    for submission in edit.submissions.all():
        services.retry_submission(submission.pk)
    assert Edit.objects.get(pk=edit.pk).results.count() == 2


def test_a_request_whose_checks_were_lost_is_checked(alice, settings, simulator):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"
    settings.CALLBACK_GIVE_UP_AFTER = 0
    settings.REAP_STALE_AFTER = 0
    edit = create(alice)
    services.run_edit(edit.pk)
    submission = edit.submissions.get()
    Submission.objects.filter(pk=submission.pk).update(
        submitted_at=timezone.now() - timedelta(minutes=1)
    )
    assert services.reap()["late_checks"] == 1
    assert not Edit.objects.get(pk=edit.pk).is_active


def test_the_reap_command_runs_a_pass(alice, capsys):
    edit = create(alice)
    Edit.objects.filter(pk=edit.pk).update(created_at=timezone.now() - timedelta(hours=1))
    call_command("reap")
    assert "requeued_edits: 1" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)  # two candidates: requests go from two threads
def test_a_task_run_twice_stores_its_results_once(alice, simulator):
    edit = create(alice, candidates=2)
    services.run_edit(edit.pk)
    services.run_edit(edit.pk)
    for submission in edit.submissions.all():
        services.retry_submission(submission.pk)
    assert sum(r["path"].endswith("/images/edits") for r in simulator.received) == 2
    assert Edit.objects.get(pk=edit.pk).results.count() == 2


# --- Callbacks are hints ---------------------------------------------------------------------


def waiting_for_callback(owner, settings, simulator) -> Submission:
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # the simulator's own callback is lost
    edit = create(owner)
    services.run_edit(edit.pk)
    submission = edit.submissions.get()
    submission.set_callback_secret("s3cret")
    return submission


def wait_for_task(submission: Submission) -> None:
    from imageedits.edits import upstream

    deadline = time.monotonic() + 10
    while upstream.retrieve_task(submission.task_id) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_forged_success_callback_is_replaced_by_the_task_record(
    client, alice, settings, simulator
):
    submission = waiting_for_callback(alice, settings, simulator)
    wait_for_task(submission)
    forged = make_png(10, 10, color=(0, 255, 0))
    payload = {
        "success": True,
        "task_id": submission.task_id,
        "data": {"data": [{"b64_json": base64.b64encode(forged).decode()}]},
    }
    client.post(reverse("edit-callback", args=[submission.pk, "s3cret"]), payload,
                "application/json")  # fmt: skip

    result = Edit.objects.get().results.get()
    assert (result.width, result.height) == (64, 48)  # the real result, not the forged 10x10


def test_a_forged_failure_callback_does_not_fail_a_good_edit(client, alice, settings, simulator):
    submission = waiting_for_callback(alice, settings, simulator)
    wait_for_task(submission)
    payload = {"success": False, "error": {"code": "forbidden", "message": "nope"}}
    client.post(reverse("edit-callback", args=[submission.pk, "s3cret"]), payload,
                "application/json")  # fmt: skip
    assert Edit.objects.get().status == Edit.Status.SUCCEEDED


def test_an_early_callback_waits_for_the_task_record(client, alice, settings, simulator):
    simulator.config.latency = 3
    submission = waiting_for_callback(alice, settings, simulator)
    payload = {"success": True, "data": {"data": [{"b64_json": "AAAA"}]}}
    client.post(reverse("edit-callback", args=[submission.pk, "s3cret"]), payload,
                "application/json")  # fmt: skip
    assert Edit.objects.get().is_active
    assert tasks_named("check_submission") == 2  # the usual late check, and one soon
