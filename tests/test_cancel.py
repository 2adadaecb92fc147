"""Cancel: the owner stops an edit under way. Requests not yet sent (queued, or waiting for a
retry) are never sent; a request already sent cannot be called back, and its answer, when it
comes, is thrown away; the edit stays "Cancelled" whatever the workers, callbacks and reaper do."""

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from imageedits.edits import housekeeping, images, pipeline, services, throttle
from imageedits.edits.models import Edit, Submission

from .conftest import make_png, run_edit, run_tasks, wait_for_task_record

pytestmark = pytest.mark.django_db(transaction=True)


def create(owner, candidates=1) -> Edit:
    upload = images.reencode(make_png())
    new = services.NewEdit("make it sepia", "gpt-image-2", "", [upload], [], candidates=candidates)
    return services.create_edit(owner, new)


def edit_requests(simulator) -> list[dict]:
    return [r for r in simulator.received if r["path"].endswith("/images/edits")]


def assert_cancelled(edit: Edit) -> None:
    edit.refresh_from_db()
    assert edit.status == Edit.Status.CANCELLED
    assert set(edit.submissions.values_list("status", flat=True)) == {Edit.Status.CANCELLED}


def test_a_queued_edit_cancelled_is_never_sent(alice, simulator):
    simulator.reset()
    edit = create(alice, candidates=2)
    assert edit.cancel() is True
    run_edit(edit)  # the start task the edit's creation queued, and one more

    assert edit_requests(simulator) == []
    assert_cancelled(edit)
    assert edit.finished_at is not None
    assert edit.billed_credits == 0  # nothing came back, nothing is billed
    assert throttle.edit_limit_problem(alice) is None  # no longer counts as under way


def test_a_request_waiting_for_its_retry_is_not_sent_again(alice, simulator):
    simulator.reset()
    simulator.inject("500", times=1)
    edit = create(alice)
    run_edit(edit)
    submission = edit.submissions.get()
    assert submission.is_retrying and len(edit_requests(simulator)) == 1

    edit.cancel()
    pipeline.run_submission.call(submission.pk)  # the deferred retry comes due

    assert len(edit_requests(simulator)) == 1
    assert_cancelled(edit)


def test_an_answer_to_a_request_sent_before_the_cancel_is_discarded(
    alice, simulator, worker, stored_files
):
    simulator.reset()
    simulator.config.latency = 2
    edit = create(alice)
    inputs = stored_files()
    pipeline.start_edit.enqueue(edit.pk)
    deadline = time.monotonic() + 15
    while not Submission.objects.filter(edit=edit, status=Submission.Status.RUNNING).exists():
        assert time.monotonic() < deadline, "the request was not sent"
        time.sleep(0.05)

    assert edit.cancel() is True
    deadline = time.monotonic() + 15
    while not edit_requests(simulator):
        assert time.monotonic() < deadline, "the request was not sent"
        time.sleep(0.05)
    time.sleep(3.5)  # the answer comes after 2 s; the worker then tries to store it

    assert len(edit_requests(simulator)) == 1  # sent once, never again
    assert_cancelled(edit)
    assert edit.results.count() == 0
    assert stored_files() == inputs  # the discarded answer's images are not kept


def test_a_late_callback_after_the_cancel_changes_nothing(client, settings, alice, simulator):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # the upstream's own callback goes nowhere
    edit = create(alice)
    run_edit(edit)
    submission = edit.submissions.get()
    secret = "s3cret"
    submission.set_callback_secret(secret)
    wait_for_task_record(submission)

    edit.cancel()
    hook = reverse("edit-callback", args=[submission.pk, secret])
    assert client.post(hook, {"task_id": submission.task_id}, "application/json").status_code == 202
    assert run_tasks() == 0  # no check is queued for a cancelled request
    pipeline.check_submission.call(submission.pk)  # nor does a check already queued do anything

    assert_cancelled(edit)
    assert edit.results.count() == 0


def test_results_stored_before_the_cancel_stay(alice, simulator, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"
    edit = create(alice, candidates=2)
    run_edit(edit)
    first = edit.submissions.get(index=0)
    wait_for_task_record(first)
    pipeline.check_submission.call(first.pk)

    edit.cancel()
    edit.refresh_from_db()
    assert edit.status == Edit.Status.CANCELLED and edit.results.count() == 1
    assert edit.billed_credits == edit.credits / 2  # the one result that came back
    assert edit.submissions.get(index=1).status == Submission.Status.CANCELLED


def test_the_reaper_leaves_a_cancelled_edit_alone(alice, settings):
    edit = create(alice)
    edit.mark_running()
    edit.cancel()
    run_tasks()  # the start task queued with the edit, which finds nothing to start
    long_ago = timezone.now() - timedelta(days=1)
    Edit.objects.filter(pk=edit.pk).update(created_at=long_ago, started_at=long_ago)

    assert set(housekeeping.reap().values()) == {0}
    assert run_tasks() == 0
    assert_cancelled(edit)


def test_an_ended_edit_cannot_be_cancelled(alice, simulator):
    edit = create(alice)
    run_edit(edit)
    assert edit.cancel() is False
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED


def test_the_owner_cancels_from_the_page_and_sees_it(client, alice):
    edit = create(alice)
    client.force_login(alice)
    response = client.post(reverse("edit-cancel", args=[edit.pk]), follow=True)
    page = response.content.decode()
    assert "The edit was cancelled." in page
    assert "Cancelled: nothing more is sent to the image service." in page
    assert 'hx-get="' not in page  # a cancelled edit does not poll
    history = client.get(reverse("edit-list"), {"status": "cancelled"}).content.decode()
    assert "Cancelled</span>" in history and f"/edits/{edit.pk}/" in history


def test_only_the_owner_may_cancel_and_only_by_post(client, alice, bob):
    edit = create(alice)
    client.force_login(bob)
    assert client.post(reverse("edit-cancel", args=[edit.pk])).status_code == 404
    client.force_login(alice)
    assert client.get(reverse("edit-cancel", args=[edit.pk])).status_code == 405
    edit.refresh_from_db()
    assert edit.status == Edit.Status.QUEUED


def test_an_admin_cancels_edits_under_way(client, admin_user, alice, simulator):
    done = create(alice)
    run_edit(done)
    under_way = create(alice)
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:edits_edit_changelist"),
        {"action": "cancel", "_selected_action": [under_way.pk, done.pk]},
        follow=True,
    )
    assert "1 edit(s) cancelled." in response.content.decode()
    assert_cancelled(under_way)
    done.refresh_from_db()
    assert done.status == Edit.Status.SUCCEEDED
