"""Upstream faults injected through the simulator: every edit ends succeeded or failed with its
own message, retries are bounded and visible, and nothing is stuck or stored twice."""

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from django.utils import timezone

from imageedits.edits import images, pipeline, services
from imageedits.edits.models import Edit, Submission

from .conftest import make_png, run_edit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _quick_retries(settings):
    settings.RETRY_BASE_DELAY = 0
    settings.RETRY_MAX_DELAY = 0
    settings.UPSTREAM_ATTEMPTS = 4


def create(owner, urls=(), candidates=1) -> Edit:
    uploads = [] if urls else [images.reencode(make_png())]
    new = services.NewEdit("blur it", "gpt-image-2", "", uploads, list(urls), candidates=candidates)
    return services.create_edit(owner, new)


def run_to_the_end(edit: Edit, seconds: float = 20) -> Edit:
    run_edit(edit)
    deadline = time.monotonic() + seconds
    while Edit.objects.get(pk=edit.pk).is_active:
        assert time.monotonic() < deadline, "the edit is stuck"
        time.sleep(0.05)
    edit.refresh_from_db()
    return edit


def edit_requests(simulator) -> int:
    return sum(r["path"].endswith("/images/edits") for r in simulator.received)


@pytest.mark.parametrize("fault", ["429", "500", "timeout"])
def test_a_passing_fault_is_retried_and_the_edit_succeeds(alice, worker, simulator, fault):
    simulator.inject(fault, times=2)
    edit = run_to_the_end(create(alice))
    assert edit.status == Edit.Status.SUCCEEDED
    submission = edit.submissions.get()
    assert submission.attempts == 3 and edit_requests(simulator) == 3
    assert (submission.error_code, submission.error_message) == ("", "")
    assert edit.results.count() == 1


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("429", "too many requests right now"),
        ("500", "had an internal error"),
        ("timeout", "took too long to answer"),
    ],
)
def test_retries_are_bounded_then_the_edit_fails_in_plain_words(
    alice, worker, simulator, fault, message
):
    simulator.inject(fault, times=10)
    edit = run_to_the_end(create(alice))
    assert edit.status == Edit.Status.FAILED
    assert message in edit.error_message
    assert edit_requests(simulator) == 4


def test_an_image_url_the_upstream_cannot_download_is_named_as_the_cause(alice, worker, simulator):
    edit = run_to_the_end(create(alice, urls=[f"{simulator.url}/samples/no-such-image.png"]))
    assert edit.status == Edit.Status.FAILED
    assert "could not download one of the image URLs" in edit.error_message
    assert edit_requests(simulator) == 1  # not retried: it cannot succeed (and each is paid)


def test_an_unreachable_upstream_is_retried_then_fails(alice, worker, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/openai"
    edit = run_to_the_end(create(alice))
    assert edit.status == Edit.Status.FAILED
    assert "could not be reached" in edit.error_message
    assert edit.submissions.get().attempts == 4


def test_a_slow_upstream_times_out_against_the_deadline(alice, worker, simulator, settings):
    settings.UPSTREAM_TIMEOUT = 1
    settings.UPSTREAM_ATTEMPTS = 1
    simulator.config.slow_seconds = 5
    simulator.inject("slow")
    edit = run_to_the_end(create(alice))
    assert edit.status == Edit.Status.FAILED
    assert "took too long to answer" in edit.error_message


@pytest.mark.parametrize(
    ("fault", "urls", "code", "message"),
    [
        ("malformed", (), "malformed_answer", "could not be understood"),
        ("empty", (), "no_image", "answered without any image"),
        ("garbage", (), "bad_image_data", "not a readable image"),
        ("garbage", ("square",), "bad_image_data", "not a readable image"),
        ("gone", ("square",), "result_unavailable", "its link may have expired"),
    ],
)
def test_a_broken_answer_fails_the_edit_with_its_own_message(
    alice, worker, simulator, stored_files, fault, urls, code, message
):
    urls = [f"{simulator.url}/samples/{name}.png" for name in urls]
    simulator.inject(fault)  # before the edit exists: the worker may send it at once
    edit = create(alice, urls=urls)
    before = stored_files()
    edit = run_to_the_end(edit)
    assert edit.status == Edit.Status.FAILED
    assert edit.error_code == code
    assert message in edit.error_message
    assert edit_requests(simulator) == 1  # not worth retrying
    assert stored_files() == before


def test_the_person_sees_the_retry_while_it_waits(client, alice, simulator, settings):
    settings.RETRY_BASE_DELAY = 60
    settings.RETRY_MAX_DELAY = 60
    simulator.inject("429")
    edit = create(alice)
    run_edit(edit)  # no worker: the retry waits in the queue

    client.force_login(alice)
    page = client.get(reverse("edit-status", args=[edit.pk])).content.decode()
    assert "Candidate 1: retrying (2 of 4)." in page
    assert "too many requests right now" in page


def test_retry_after_is_honoured(alice, simulator, settings):
    settings.RETRY_MAX_DELAY = 60
    simulator.inject("429")  # the simulator says Retry-After: 1
    edit = create(alice)
    before = timezone.now()
    run_edit(edit)
    submission = edit.submissions.get()
    assert submission.status == Submission.Status.QUEUED
    assert submission.retry_at >= before + timedelta(seconds=1)


def test_backoff_grows_with_each_attempt(alice, simulator, settings):
    settings.RETRY_BASE_DELAY = 10
    settings.RETRY_MAX_DELAY = 1000
    simulator.inject("500", times=3)
    edit = create(alice)
    run_edit(edit)
    delays = []
    for _ in range(3):
        submission = edit.submissions.get()
        if submission.status != Submission.Status.QUEUED:
            break
        delays.append((submission.retry_at - timezone.now()).total_seconds())
        pipeline.run_submission.call(submission.pk)
    # 10, 20, 40 seconds, each with jitter between half and one and a half times.
    assert 5 <= delays[0] <= 15 and 10 <= delays[1] <= 30 and 20 <= delays[2] <= 60
    assert Edit.objects.get(pk=edit.pk).status == Edit.Status.SUCCEEDED


def test_a_failed_edit_can_run_again(client, alice, worker, simulator):
    simulator.inject("forbidden")
    edit = run_to_the_end(create(alice))
    assert edit.status == Edit.Status.FAILED

    client.force_login(alice)
    response = client.post(reverse("edit-rerun", args=[edit.pk]))
    assert response.status_code == 302
    deadline = time.monotonic() + 20
    while Edit.objects.get(pk=edit.pk).status != Edit.Status.SUCCEEDED:
        assert time.monotonic() < deadline, "the re-run did not finish"
        time.sleep(0.05)
    edit.refresh_from_db()
    assert edit.results.count() == 1 and edit.error_message == ""


def test_only_the_owner_can_run_an_edit_again(client, alice, bob, simulator):
    simulator.inject("forbidden")
    edit = create(alice)
    run_edit(edit)
    client.force_login(bob)
    assert client.post(reverse("edit-rerun", args=[edit.pk])).status_code == 404
    assert Edit.objects.get(pk=edit.pk).status == Edit.Status.FAILED


def test_a_running_edit_cannot_be_run_again(client, alice):
    edit = create(alice)
    client.force_login(alice)
    client.post(reverse("edit-rerun", args=[edit.pk]))
    assert Edit.objects.get(pk=edit.pk).status == Edit.Status.QUEUED
    assert edit.submissions.get().attempts == 0


class Dripper(BaseHTTPRequestHandler):
    """An upstream that answers at once and then sends its body a byte at a time."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass  # the client gave up, as it should

    def log_message(self, *args):
        pass


def test_a_dripping_upstream_is_cut_off_at_the_total_deadline(settings):
    from imageedits.edits import upstream

    server = ThreadingHTTPServer(("127.0.0.1", 0), Dripper)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}/openai"
    settings.UPSTREAM_TIMEOUT = 1  # each byte comes well within the per-read timeout
    started = time.monotonic()
    with pytest.raises(upstream.ServiceTimeout):
        upstream.submit(
            upstream.EditRequest(
                "gpt-image-2", "blur", "", [upstream.InputFile("a.png", make_png(), "image/png")]
            )
        )
    assert time.monotonic() - started < 5  # not the 100 s the drip would take
    server.shutdown()


def test_retry_after_wins_over_a_shorter_backoff_cap(alice, simulator, settings):
    settings.RETRY_MAX_DELAY = 0
    simulator.inject("429")  # Retry-After: 1
    edit = create(alice)
    before = timezone.now()
    # The first try only, run here: a worker could already have made the retry (RQ's
    # scheduler runs it once its second is up), and cleared retry_at.
    pipeline.start_edit.call(edit.pk)
    submission = edit.submissions.get()
    pipeline.run_submission.call(submission.pk)
    submission.refresh_from_db()
    assert submission.is_retrying
    assert submission.retry_at >= before + timedelta(seconds=1)
