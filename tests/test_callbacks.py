"""The callback path: the worker submits and returns, the simulator POSTs to the app over HTTP,
the app answers at once and a worker reads the task record; late or lost callbacks are caught
up through the task query endpoint."""

import base64
import hashlib
import time

import pytest
from django.urls import reverse

from imageedits.edits import images, pipeline, services
from imageedits.edits.models import Edit, Submission

from .conftest import make_png, queued, run_edit, run_tasks, wait_for_task_record


def create(owner, prompt="make it sepia") -> Edit:
    upload = images.reencode(make_png())
    return services.create_edit(owner, services.NewEdit(prompt, "gpt-image-2", "", [upload], []))


def waiting_for_callback(owner, secret: str) -> Submission:
    """An edit whose one request was sent and waits for its callback with this secret."""
    edit = create(owner)
    edit.mark_running()
    submission = edit.submissions.get()
    submission.mark_running()
    submission.set_callback_secret(secret)
    return submission


def hook(submission: Submission, secret: str) -> str:
    return reverse("edit-callback", args=[submission.pk, secret])


def first_request(edit: Edit) -> Submission:
    return edit.submissions.get()


def finished_payload(task_id="t-1") -> dict:
    return {
        "success": True,
        "task_id": task_id,
        "trace_id": "trace-1",
        "data": {"created": 1, "data": [{"b64_json": base64.b64encode(make_png()).decode()}]},
    }


@pytest.fixture
def callbacks_to(settings):
    def point_at(base_url: str) -> None:
        settings.PUBLIC_BASE_URL = base_url

    return point_at


def test_the_worker_submits_with_a_callback_and_the_callback_finishes_the_edit(
    transactional_db, live_server, callbacks_to, alice, simulator
):
    callbacks_to(live_server.url)
    simulator.config.latency = 0.5
    edit = create(alice)

    run_edit(edit)

    edit.refresh_from_db()
    submission = first_request(edit)
    assert edit.status == Edit.Status.RUNNING  # the worker did not wait for the result
    assert submission.task_id
    sent = simulator.received[-1]["fields"]["callback_url"][0]
    assert sent.startswith(f"{live_server.url}/hooks/submissions/{submission.pk}/")
    secret = sent.rstrip("/").rsplit("/", 1)[1]
    # Only a hash of the secret is kept.
    assert submission.callback_secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    (check,) = queued("check_submission")
    assert check.run_after is not None  # the late-callback check is scheduled

    # A worker's loop: the late check waits 180 s, so only the check the callback queued can
    # read the task record and store the result here.
    deadline = time.monotonic() + 15
    while Edit.objects.get(pk=edit.pk).is_active:
        assert time.monotonic() < deadline, "the callback did not finish the edit"
        run_tasks()
        time.sleep(0.05)
    assert Submission.objects.get(pk=submission.pk).callback_received_at
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED, edit.error_message
    assert edit.results.count() == 1


def test_a_failure_in_the_task_record_fails_the_edit_when_the_callback_comes(
    db, client, callbacks_to, settings, alice, simulator
):
    callbacks_to("http://127.0.0.1:9")  # the simulator's own callback is lost; we send one
    settings.UPSTREAM_ATTEMPTS = 1
    missing = f"{simulator.url}/files/no-such-image.png"  # the upstream's fetch fails
    edit = services.create_edit(alice, services.NewEdit("blur", "gpt-image-2", "", [], [missing]))
    run_edit(edit)
    submission = first_request(edit)
    submission.set_callback_secret("right-secret")
    wait_for_task_record(submission)

    response = client.post(hook(submission, "right-secret"), {"task_id": submission.task_id},
                           "application/json")  # fmt: skip
    assert response.status_code == 202
    run_tasks()
    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED
    assert "could not download one of the image URLs" in edit.error_message


def test_a_callback_with_a_wrong_secret_is_404_and_changes_nothing(db, client, alice):
    submission = waiting_for_callback(alice, "right-secret")
    url = hook(submission, "wrong-secret")
    assert client.post(url, finished_payload(), "application/json").status_code == 404
    edit = Edit.objects.get()
    assert edit.status == Edit.Status.RUNNING and edit.results.count() == 0


def test_a_callback_for_a_request_without_a_secret_or_unknown_is_404(db, client, alice):
    submission = first_request(create(alice))
    url = hook(submission, "anything")
    assert client.post(url, finished_payload(), "application/json").status_code == 404
    url = reverse("edit-callback", args=[submission.pk + 1000, "anything"])
    assert client.post(url, finished_payload(), "application/json").status_code == 404


def test_a_second_callback_for_a_finished_edit_changes_nothing(
    db, client, callbacks_to, alice, simulator, stored_files
):
    callbacks_to("http://127.0.0.1:9")
    edit = create(alice)
    run_edit(edit)
    submission = first_request(edit)
    submission.set_callback_secret("s3cret")
    wait_for_task_record(submission)
    url = hook(submission, "s3cret")
    assert client.post(url, {"task_id": submission.task_id}, "application/json").status_code == 202
    run_tasks()
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED
    finished_at, files = edit.finished_at, stored_files()

    failure = {"success": False, "error": {"code": "api_error", "message": "late"}}
    assert client.post(url, failure, "application/json").status_code == 202
    assert client.post(url, finished_payload(), "application/json").status_code == 202
    assert run_tasks() == 0  # a finished request queues no check

    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED
    assert edit.finished_at == finished_at
    assert edit.results.count() == 1
    assert stored_files() == files


def test_a_callback_is_answered_at_once_and_a_worker_downloads_the_result(
    transactional_db, live_server, callbacks_to, alice, simulator, stored_files
):
    """The result is a 3840x2160 PNG behind a URL that the web process never touches: the
    callback only queues the check; the worker then downloads and stores it."""
    import httpx

    callbacks_to("http://127.0.0.1:9")  # the simulator's own callback goes nowhere
    new = services.NewEdit(
        "sepia", "gpt-image-2", "3840x2160", [], [f"{simulator.url}/samples/landscape.png"]
    )
    edit = services.create_edit(alice, new)
    run_edit(edit)
    submission = first_request(edit)
    submission.set_callback_secret("s3cret")
    wait_for_task_record(submission)
    downloads = len([r for r in simulator.received if r["path"].startswith("/files/")])
    files = stored_files()

    started = time.monotonic()
    response = httpx.post(
        live_server.url + hook(submission, "s3cret"), json={"task_id": submission.task_id}
    )
    took = time.monotonic() - started

    assert response.status_code == 202
    assert took < 0.5, f"the callback took {took:.2f} s"
    assert stored_files() == files  # nothing downloaded or stored by the web process
    assert Edit.objects.get(pk=edit.pk).status == Edit.Status.RUNNING
    assert Submission.objects.get(pk=submission.pk).callback_received_at is not None
    assert len([r for r in simulator.received if r["path"].startswith("/files/")]) == downloads

    assert run_tasks() == 1  # the worker's check
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED, edit.error_message
    assert (edit.results.get().width, edit.results.get().height) == (3840, 2160)


def test_a_callback_needs_no_csrf_token(db, alice):
    from django.test import Client

    url = hook(waiting_for_callback(alice, "s3cret"), "s3cret")
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(url, finished_payload(), "application/json").status_code == 202


def test_a_lost_callback_is_caught_up_through_the_task_query(db, callbacks_to, alice, simulator):
    callbacks_to("http://127.0.0.1:9")  # nothing listens there: the callback is lost
    edit = create(alice)
    run_edit(edit)
    edit.refresh_from_db()
    assert edit.status == Edit.Status.RUNNING
    submission = first_request(edit)

    wait_for_task_record(submission)
    pipeline.check_submission.call(submission.pk)

    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED, edit.error_message
    assert edit.results.count() == 1


def test_a_check_while_the_upstream_still_works_checks_again_later(
    db, callbacks_to, alice, simulator
):
    callbacks_to("http://127.0.0.1:9")
    simulator.config.latency = 5
    edit = create(alice)
    run_edit(edit)
    pipeline.check_submission.call(first_request(edit).pk)

    edit.refresh_from_db()
    assert edit.status == Edit.Status.RUNNING
    assert len(queued("check_submission")) == 2


def test_an_edit_whose_callback_never_comes_fails_in_the_end(
    db, callbacks_to, settings, alice, simulator
):
    callbacks_to("http://127.0.0.1:9")
    settings.CALLBACK_GIVE_UP_AFTER = 0
    simulator.config.latency = 5
    edit = create(alice)
    run_edit(edit)
    pipeline.check_submission.call(first_request(edit).pk)

    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED
    assert edit.error_code == "callback_timeout"
    assert "never reported back" in edit.error_message


@pytest.mark.local_files
def test_a_check_that_breaks_unexpectedly_still_checks_again(db, callbacks_to, settings, alice):
    callbacks_to("http://127.0.0.1:9")
    edit = create(alice)
    run_edit(edit)
    submission = first_request(edit)
    wait_for_task_record(submission)
    blocker = settings.MEDIA_ROOT / "not-a-directory"
    blocker.write_text("storage cannot write below a file")
    settings.MEDIA_ROOT = blocker  # storing the result now fails with an OSError

    pipeline.check_submission.call(submission.pk)

    edit.refresh_from_db()
    assert edit.status == Edit.Status.RUNNING
    assert len(queued("check_submission")) == 2
