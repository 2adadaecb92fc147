"""Creating an edit, running it through the pipeline's tasks without callbacks, and what gets
stored."""

import base64
import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image, PngImagePlugin

from imageedits.edits import images, pipeline, services, upstream
from imageedits.edits.models import Edit, Submission

from .conftest import make_png, queued, run_edit, run_tasks

pytestmark = pytest.mark.django_db


def new_edit(
    owner, prompt="make it grayscale", model="gpt-image-2", size="", uploads=None, urls=()
) -> Edit:
    if uploads is None:
        uploads = [images.reencode(make_png())]
    return services.create_edit(
        owner, services.NewEdit(prompt, model, size, list(uploads), list(urls))
    )


def test_creating_an_edit_stores_inputs_and_queues_its_run_on_commit(
    alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        edit = new_edit(alice)

    assert edit.status == Edit.Status.QUEUED
    stored = edit.inputs.get()
    assert stored.file.name.startswith("inputs/") and stored.file.name.endswith(".png")
    assert (stored.width, stored.height) == (64, 48)
    (task,) = queued()
    assert (task.name, task.args) == ("start_edit", [edit.pk])


def test_a_failed_create_leaves_no_row_and_no_file(alice, stored_files, monkeypatch):
    def broken_create(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("imageedits.edits.services.InputImage.objects.create", broken_create)
    with pytest.raises(RuntimeError):
        new_edit(alice)
    assert Edit.objects.count() == 0
    assert stored_files() == []


def test_running_an_edit_stores_every_result_with_a_thumbnail(alice):
    edit = new_edit(alice, prompt="make it grayscale", size="1024x1536")
    run_edit(edit)

    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED, edit.error_message
    assert edit.started_at <= edit.finished_at
    request = edit.submissions.get()
    assert request.task_id and request.trace_id and request.elapsed is not None
    result = edit.results.get()
    assert (result.width, result.height) == (1024, 1536)
    with result.file.open("rb") as handle:
        stored = Image.open(handle)
        stored.load()
    assert stored.size == (1024, 1536)
    r, g, b = stored.convert("RGB").getpixel((10, 10))
    assert r == g == b  # the simulator really made it gray
    with result.thumbnail.open("rb") as handle:
        thumb = Image.open(handle)
        assert thumb.format == "WEBP" and max(thumb.size) == images.THUMBNAIL_SIDE
    with result.preview.open("rb") as handle:
        preview = Image.open(handle)
        assert preview.format == "WEBP" and max(preview.size) == images.PREVIEW_SIDE


def test_a_url_input_edit_downloads_the_result_from_the_answers_url(alice, simulator):
    edit = new_edit(alice, uploads=[], urls=[f"{simulator.url}/samples/portrait.png"])
    run_edit(edit)

    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED, edit.error_message
    assert simulator.received[-1]["content_type"] == "json"
    assert (edit.results.get().width, edit.results.get().height) == (768, 1024)


def test_nano_banana_results_are_stored_as_jpeg(alice):
    edit = new_edit(alice, model="nano-banana")
    run_edit(edit)
    result = Edit.objects.get(pk=edit.pk).results.get()
    assert result.file.name.endswith(".jpg")
    assert result.revised_prompt == "make it grayscale"


def test_an_upstream_error_fails_the_edit_with_its_plain_message(alice, simulator, stored_files):
    simulator.inject("used_up")
    edit = new_edit(alice)
    before = stored_files()
    run_edit(edit)

    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED
    assert edit.error_code == "used_up"
    assert "run out of credit" in edit.error_message
    assert edit.finished_at is not None
    assert stored_files() == before


def test_an_unparseable_answer_fails_the_edit(alice, simulator, stored_files):
    simulator.inject("malformed")
    edit = new_edit(alice)
    before = stored_files()
    run_edit(edit)
    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED
    assert edit.error_code == "malformed_answer"
    assert "could not be understood" in edit.error_message
    assert stored_files() == before


def test_a_result_that_is_not_an_image_fails_the_edit_and_removes_the_others(alice, stored_files):
    edit = new_edit(alice, model="dall-e-2", uploads=[images.reencode(make_png(64, 64))])
    edit.candidates = 2
    edit.mark_running()
    request = edit.submissions.get()
    request.n = 2
    request.mark_running()
    before = stored_files()
    good = upstream.ResultData(b64_json=base64.b64encode(make_png()).decode())
    bad = upstream.ResultData(b64_json=base64.b64encode(b"<html>not pixels</html>").decode())

    pipeline.finish(request, upstream.EditAnswer(images=[good, bad]))

    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED
    assert edit.error_code == "bad_image_data"
    assert edit.results.count() == 0
    assert stored_files() == before


def test_an_answer_that_loses_the_race_stores_nothing(alice, stored_files):
    edit = new_edit(alice)
    edit.mark_running()
    request = edit.submissions.get()
    request.mark_running()
    stale = Submission.objects.get(pk=request.pk)  # loaded while still running
    answer = upstream.EditAnswer(
        images=[upstream.ResultData(b64_json=base64.b64encode(make_png()).decode())]
    )
    pipeline.finish(request, answer)
    files = stored_files()

    pipeline.finish(stale, answer)  # a second finisher that still thinks it is running

    assert Edit.objects.get(pk=edit.pk).results.count() == 1
    assert stored_files() == files


def test_running_the_same_task_twice_does_not_run_the_edit_twice(alice, simulator):
    edit = new_edit(alice)
    pipeline.start_edit.enqueue(edit.pk)
    pipeline.start_edit.enqueue(edit.pk)
    run_tasks()
    submission = edit.submissions.get()
    pipeline.run_submission.call(submission.pk)
    pipeline.check_submission.call(submission.pk)
    assert len(simulator.received) == 1
    assert Edit.objects.get(pk=edit.pk).results.count() == 1


def test_starting_an_edit_queues_one_task_per_request_and_sends_nothing(alice, simulator):
    edit = services.create_edit(
        alice,
        services.NewEdit("blur", "gpt-image-2", "", [images.reencode(make_png())], [],
                         candidates=3),
    )  # fmt: skip
    pipeline.start_edit.call(edit.pk)

    assert Edit.objects.get(pk=edit.pk).status == Edit.Status.RUNNING
    requests = {task.args[0] for task in queued("run_submission")}
    assert requests == set(edit.submissions.values_list("pk", flat=True))
    assert simulator.received == []  # each request is sent by its own task

    run_tasks()
    assert Edit.objects.get(pk=edit.pk).results.count() == 3


def test_a_finished_edit_is_not_moved_by_a_late_answer(alice):
    edit = new_edit(alice)
    run_edit(edit)
    edit.refresh_from_db()
    assert not edit.mark_failed("late", "should not apply")
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED


def test_deleting_an_edit_deletes_its_files(
    alice, stored_files, django_capture_on_commit_callbacks
):
    edit = new_edit(alice)
    run_edit(edit)
    assert len(stored_files()) == 5  # input, result, thumbnail and the two previews
    with django_capture_on_commit_callbacks(execute=True):
        Edit.objects.get(pk=edit.pk).delete()
    assert stored_files() == []


def test_an_edit_whose_task_cannot_be_queued_fails_visibly(
    alice, monkeypatch, django_capture_on_commit_callbacks
):
    class BrokenQueue:
        def enqueue(self, *args):
            raise ConnectionError("queue is down")

    monkeypatch.setattr(pipeline, "start_edit", BrokenQueue())
    with django_capture_on_commit_callbacks(execute=True):
        edit = new_edit(alice)
    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED
    assert edit.error_code == "enqueue_failed"
    assert edit.inputs.get().file.storage.exists(edit.inputs.get().file.name)


def test_a_deleted_edit_leaves_its_task_nothing_to_do(alice, simulator):
    edit = new_edit(alice)
    Edit.objects.filter(pk=edit.pk).delete()
    run_edit(edit)
    assert simulator.received == [] and queued("run_submission") == []


def test_input_files_are_re_encoded_without_their_metadata(alice):
    metadata = PngImagePlugin.PngInfo()
    metadata.add_text("Comment", "GPS 51.5007 -0.1246")
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "teal").save(buffer, format="PNG", pnginfo=metadata)
    assert b"GPS 51.5007" in buffer.getvalue()

    edit = new_edit(alice, uploads=[images.reencode(buffer.getvalue())])
    with default_storage.open(edit.inputs.get().file.name, "rb") as handle:
        stored = handle.read()
    assert b"GPS 51.5007" not in stored
    assert Image.open(io.BytesIO(stored)).size == (40, 30)
