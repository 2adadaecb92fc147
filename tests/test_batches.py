"""Batches: one instruction over many images (files, a ZIP, URLs), each its own edit. A ZIP is
judged before it is read; the batch counts as one edit against the limits and as a whole
against the budgets; the request only checks and stores the images, and a task reads each one
(an image that cannot be used fails its own edit); its edits are released a few at a time;
failed ones can be retried; the results come back as one ZIP; and nobody but the owner sees any
of it."""

import io
import time
import zipfile
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from imageedits.edits import batches, fetch, housekeeping, pipeline, storage, throttle
from imageedits.edits.models import Batch, Edit, PersonBudget

from .conftest import make_png, queued, run_tasks

pytestmark = pytest.mark.django_db(transaction=True)


def png_file(name="photo.png", **kwargs) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, make_png(**kwargs), content_type="image/png")


def zip_of(files: dict[str, bytes]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return SimpleUploadedFile("photos.zip", buffer.getvalue(), content_type="application/zip")


def refusal(archive=None, uploads=(), urls=()) -> str:
    with pytest.raises(batches.BatchRefused) as refused:
        batches.collect_images(list(uploads), archive, list(urls))
    return str(refused.value).replace("\xa0", " ")  # filesizeformat's spaces


def start(owner, uploads=(), archive=None, urls=(), model="gpt-image-2") -> Batch:
    """A batch started as the page starts it, its images not read yet."""
    sources = batches.collect_images(list(uploads), archive, list(urls))
    return batches.start_batch(owner, batches.Settings("make it sepia", model, "", {}, 1), sources)


def prepare(batch: Batch) -> None:
    """Read each of the batch's images, one after another, as the queued tasks would."""
    for edit_id in batch.edits.order_by("pk").values_list("pk", flat=True):
        batches.prepare_image.call(edit_id)


def make_batch(owner, count=3, model="gpt-image-2") -> Batch:
    """A batch of `count` images, read, its first edits released."""
    batch = start(owner, [png_file(f"photo-{i}.png") for i in range(count)], model=model)
    prepare(batch)
    return batch


def tiles(batch: Batch) -> dict[str, tuple[str, str]]:
    """Each image's name: its edit's status and reason."""
    rows = batch.edits.values_list("batch_name", "status", "error_message")
    return {name: (status, reason) for name, status, reason in rows}


def post_batch(client, **fields):
    data = {"prompt": "make it sepia", "model": "gpt-image-2", "size": "auto", **fields}
    return client.post(reverse("batch-new"), data)


# --- Reading the images -----------------------------------------------------------------------


def test_a_zip_gives_each_image_with_its_name_and_passes_over_folders_and_mac_metadata():
    archive = zip_of({
        "trip/beach.png": make_png(), "trip/hill.png": make_png(),
        "__MACOSX/trip/._beach.png": b"x", ".DS_Store": b"x",
    })  # fmt: skip
    sources = batches.collect_images([], archive, [])
    assert [source.name for source in sources] == ["trip/beach.png", "trip/hill.png"]
    assert sources[0].open().read() == make_png()


def test_a_zip_with_more_images_than_a_batch_holds_is_refused_before_reading(settings):
    settings.BATCH_MAX_IMAGES = 3
    archive = zip_of({f"{i}.png": b"not even an image" for i in range(4)})
    assert refusal(archive) == "A batch holds at most 3 images; you gave 4."


def test_a_zip_entry_that_climbs_out_of_its_folder_is_refused():
    for name in ("../evil.png", "photos/../../evil.png", "/etc/evil.png", "C:/evil.png"):
        archive = zip_of({name: make_png()})
        assert "unsafe name" in refusal(archive), name


def test_a_zip_that_declares_too_many_bytes_is_refused_before_anything_is_unpacked(settings):
    settings.EDIT_MAX_UPLOAD_BYTES = 10_000
    archive = zip_of({"huge.png": b"\0" * 20_000})  # a few dozen bytes packed
    assert refusal(archive) == "“huge.png” is 19.5 KB; the limit is 9.8 KB per image."
    settings.EDIT_MAX_UPLOAD_BYTES = 50_000
    settings.BATCH_MAX_REQUEST_BYTES = 30_000
    archive = zip_of({"a.png": b"\0" * 20_000, "b.png": b"\0" * 20_000})
    assert "add up to more than 29.3 KB once unpacked" in refusal(archive)


def test_an_encrypted_zip_entry_is_refused_at_once_and_nothing_is_kept(logged_in, stored_files):
    data = bytearray(zip_of({"secret.png": make_png()}).read())
    # The "encrypted" flag in both headers, as an encrypting tool sets it.
    for header, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.find(header) + offset] |= 0x1
    upload = SimpleUploadedFile("photos.zip", bytes(data), content_type="application/zip")
    response = post_batch(logged_in, images=[png_file("first.png")], archive=upload)
    assert response.status_code == 400
    assert "“secret.png” in the ZIP is encrypted; send it unencrypted." in response.content.decode()
    assert not Edit.objects.exists() and stored_files() == []


def test_a_zip_bomb_that_lies_about_its_size_is_cut_short_at_what_it_declares(
    logged_in, stored_files
):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("bomb.png", b"\0" * 5_000_000)
    data = bytearray(buffer.getvalue())
    # The sizes in both headers say 100 bytes; the packed stream holds five million.
    for header, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(header) + offset
        data[at : at + 4] = (100).to_bytes(4, "little")
    archive = SimpleUploadedFile("bomb.zip", bytes(data), content_type="application/zip")
    # Refused while the request stores it, and nothing of the batch is kept, not even the
    # file stored before it.
    response = post_batch(logged_in, images=[png_file("first.png")], archive=archive)
    assert response.status_code == 400
    assert "“bomb.png” in the ZIP cannot be read" in response.content.decode()
    assert not Batch.objects.exists() and not Edit.objects.exists()
    assert stored_files() == []


def test_a_file_that_is_not_a_zip_is_said_to_be_so():
    archive = SimpleUploadedFile("photos.zip", b"not a zip", content_type="application/zip")
    assert refusal(archive) == "“photos.zip” is not a ZIP file that can be read."


def test_images_with_too_many_pixels_in_all_are_refused_from_their_headers(monkeypatch):
    monkeypatch.setattr(batches, "BATCH_MAX_PIXELS", 64 * 48 * 2)
    # Headers of 64x48 images with nothing after them: refused before any is decoded.
    uploads = [SimpleUploadedFile(f"{i}.png", make_png()[:60]) for i in range(3)]
    assert refusal(uploads=uploads).endswith(
        "megapixels in all; a batch takes at most 0. Send fewer or smaller ones."
    )


def test_a_batch_without_images_says_how_to_give_them():
    assert refusal() == "Add at least one image: files, a ZIP of images, or URLs."


# --- Reading each image, after the request ------------------------------------------------------


def test_the_request_only_stores_the_images_and_a_task_reads_each(alice, simulator, stored_files):
    url = f"{simulator.url}/samples/square.png"
    batch = start(alice, [png_file("a.png")], urls=[url])
    assert not [r for r in simulator.received if r["path"].startswith("/samples/")]  # not yet
    assert batches.progress(batch).preparing == 2
    assert not batch.held().exists() and not queued("start_edit")
    assert [name.split("/")[0] for name in stored_files()] == ["uploads"]  # a.png as it came

    run_tasks()

    assert tiles(batch) == {"a.png": ("succeeded", ""), "square.png": ("succeeded", "")}
    assert batches.progress(batch).preparing == 0
    assert not [name for name in stored_files() if name.startswith("uploads/")]  # deleted


def test_an_image_that_cannot_be_used_fails_its_own_edit_and_the_others_go_ahead(
    alice, simulator, stored_files
):
    archive = zip_of({"beach.png": make_png(), "notes.txt": b"hello"})
    missing = f"{simulator.url}/samples/nothing.png"
    batch = start(alice, archive=archive, urls=[missing])

    run_tasks()

    found = tiles(batch)
    assert found["beach.png"] == ("succeeded", "")
    assert found["notes.txt"] == (
        "failed",
        "“notes.txt” cannot be used: It is not a PNG, JPEG or WebP image that can be read.",
    )
    status, reason = found["nothing.png"]
    assert status == "failed" and reason.startswith(f"“{missing}” cannot be used: the address")
    # The unusable images are not billed, and nothing of them stays stored.
    assert batch.edits.get(batch_name="notes.txt").billed_credits == 0
    assert not [name for name in stored_files() if name.startswith("uploads/")]
    assert housekeeping.sweep_orphans(older_than=timedelta(0)) == 0


def test_a_model_that_needs_square_images_fails_the_edit_naming_the_image(alice):
    batch = start(
        alice,
        [png_file("wide.png", width=64, height=48), png_file("square.png", width=64, height=64)],
        model="dall-e-2",
    )
    prepare(batch)
    assert tiles(batch)["wide.png"] == (
        "failed",
        "dall-e-2 needs square images; “wide.png” is 64x48.",
    )
    assert tiles(batch)["square.png"] == ("queued", "")
    assert batch.held().count() == 0  # square.png released


def test_retry_failed_leaves_an_image_that_cannot_be_used_alone(logged_in, alice):
    batch = start(alice, [SimpleUploadedFile("notes.png", b"hello")])
    edit = batch.edits.get()
    assert logged_in.get(edit.get_absolute_url()).status_code == 200  # while it is read
    prepare(batch)
    page = logged_in.get(edit.get_absolute_url()).content.decode()  # its own page says why
    assert "“notes.png” cannot be used" in page
    assert "Try again" not in page and "Run again" not in page
    logged_in.post(reverse("batch-retry", args=[batch.pk]))
    assert Edit.objects.get(pk=edit.pk).status == Edit.Status.FAILED
    logged_in.post(reverse("edit-rerun", args=[edit.pk]))  # its own page's "Try again"
    assert Edit.objects.get(pk=edit.pk).status == Edit.Status.FAILED
    answer = logged_in.post(reverse("edit-run-again", args=[edit.pk]), follow=True)
    assert "This edit has no image to run again" in answer.content.decode()
    assert Edit.objects.count() == 1  # no new edit without an image


def test_each_url_is_fetched_with_a_deadline_of_its_own(alice, simulator, monkeypatch):
    monkeypatch.setattr(fetch, "DEADLINE_SECONDS", 1)
    urls = [f"{simulator.url}/samples/square.png?n={i}" for i in range(3)]
    batch = start(alice, urls=urls)
    time.sleep(1.2)  # one deadline shared from the request would be over before any fetch

    prepare(batch)

    assert set(batch.edits.values_list("status", flat=True)) == {Edit.Status.QUEUED}
    assert batch.edits.filter(inputs__isnull=False).count() == 3


def test_the_reaper_queues_again_an_image_whose_preparation_was_lost(alice, settings):
    batch = start(alice, [png_file("a.png")])
    edit = batch.edits.get()
    settings.REAP_STALE_AFTER = 0  # its task counts as lost at once

    counts = housekeeping.reap()

    assert counts["requeued_preparations"] == 1
    assert counts["requeued_edits"] == 0  # never started before its image is read
    assert [task.args for task in queued("prepare_image")] == [[edit.pk], [edit.pk]]
    run_tasks()  # whichever runs second finds the image read, and does nothing
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED and edit.inputs.count() == 1


def test_an_image_waiting_to_be_read_is_kept_by_the_sweep_and_a_lost_one_is_swept(
    alice, stored_files
):
    start(alice, [png_file("a.png")])
    lost = storage.save_upload(io.BytesIO(b"left by a killed request"))
    assert housekeeping.sweep_orphans(older_than=timedelta(0)) == 1
    assert lost not in stored_files() and len(stored_files()) == 1


def test_a_cancelled_batch_still_preparing_leaves_no_image_behind(
    logged_in, alice, simulator, stored_files
):
    batch = start(alice, [png_file("a.png"), png_file("b.png")])
    logged_in.post(reverse("batch-cancel", args=[batch.pk]))
    run_tasks()
    assert set(batch.edits.values_list("status", flat=True)) == {Edit.Status.CANCELLED}
    assert not [name for name in stored_files() if name.startswith("uploads/")]
    assert not [r for r in simulator.received if r["path"].endswith("/images/edits")]


def test_the_page_says_how_many_images_are_being_prepared(logged_in, alice):
    batch = start(alice, [png_file("a.png"), png_file("b.png")])
    page = logged_in.get(batch.get_absolute_url()).content.decode()
    assert "Preparing 2 images" in page
    url = reverse("batch-status", args=[batch.pk])
    signature = batches.progress(batch).signature
    assert logged_in.get(url, {"seen": signature}).status_code == 204
    batches.prepare_image.call(batch.edits.order_by("pk").first().pk)
    response = logged_in.get(url, {"seen": signature})
    assert response.status_code == 200
    assert "Preparing 1 image…" in response.content.decode()


# --- Starting and queueing --------------------------------------------------------------------


def test_the_page_starts_a_batch_with_an_edit_for_each_image(logged_in, alice):
    response = post_batch(
        logged_in,
        images=[png_file("a.png"), png_file("b.png")],
        archive=zip_of({"c.png": make_png()}),
    )
    batch = Batch.objects.get()
    assert response.status_code == 302 and response["Location"] == batch.get_absolute_url()
    assert sorted(batch.edits.values_list("batch_name", flat=True)) == ["a.png", "b.png", "c.png"]
    assert set(batch.edits.values_list("prompt", "model")) == {("make it sepia", "gpt-image-2")}


def test_a_batch_refused_by_its_images_keeps_nothing_and_says_why(logged_in):
    response = post_batch(logged_in, archive=zip_of({"../x.png": make_png()}))
    assert response.status_code == 400
    assert "The ZIP holds a file with an unsafe name, “../x.png”." in response.content.decode()
    assert not Batch.objects.exists() and not Edit.objects.exists()


def test_at_most_batch_concurrency_edits_are_under_way_and_each_end_releases_the_next(
    alice, settings
):
    settings.BATCH_CONCURRENCY = 2
    batch = make_batch(alice, count=5)
    assert len(queued("start_edit")) == 2
    assert batch.held().count() == 3

    run_tasks()  # the two run to the end, each releasing one more as it ends, and so on

    statuses = list(batch.edits.values_list("status", flat=True))
    assert statuses == [Edit.Status.SUCCEEDED] * 5


def test_released_edits_never_exceed_the_concurrency(alice, settings):
    settings.BATCH_CONCURRENCY = 2
    batch = make_batch(alice, count=5)
    for _ in range(3):  # releasing again with no room releases nothing
        assert pipeline.release(batch.pk) == 0
    under_way = batch.edits.filter(status__in=Edit.ACTIVE).exclude(enqueued_at=None)
    assert under_way.count() == 2


def test_the_reaper_leaves_held_edits_alone_and_releases_where_there_is_room(alice, settings):
    settings.BATCH_CONCURRENCY = 2
    settings.REAP_STALE_AFTER = 0
    batch = make_batch(alice, count=3)
    first = batch.edits.order_by("pk").first()
    first.cancel()  # as if its worker had died before releasing the next one

    counts = housekeeping.reap()

    assert counts["released"] == 1
    assert batch.held().count() == 0
    assert counts["requeued_edits"] == 1  # the other released edit, stale at once here


def test_an_edit_cancelled_on_its_own_page_makes_room_for_the_next(logged_in, alice, settings):
    settings.BATCH_CONCURRENCY = 1
    batch = make_batch(alice, count=2)
    first, second = batch.edits.order_by("pk")
    logged_in.post(reverse("edit-cancel", args=[first.pk]))
    assert batch.held().count() == 0
    assert sorted(task.args for task in queued("start_edit")) == [[first.pk], [second.pk]]


def test_a_batch_counts_as_one_edit_against_the_limits(alice, settings):
    settings.EDITS_IN_FLIGHT = 2
    settings.EDITS_PER_MINUTE = 2
    make_batch(alice, count=5)
    assert throttle.edit_limit_problem(alice) is None  # one batch of five is one edit
    make_batch(alice, count=2)
    with pytest.raises(throttle.LimitReached):
        make_batch(alice, count=2)


def test_a_batch_past_the_budget_is_refused_as_a_whole_with_its_cost(logged_in, alice):
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("0.12"))
    response = post_batch(logged_in, images=[png_file(f"{i}.png") for i in range(3)])
    assert response.status_code == 400
    assert (
        "This batch of 3 edits costs 0.15 credits; your monthly budget has 0.12 left."
        in response.content.decode()
    )
    assert not Edit.objects.exists()


def test_retry_failed_runs_only_the_failed_ones_again(logged_in, alice, simulator):
    batch = make_batch(alice, count=3)
    simulator.inject("forbidden", times=1)
    run_tasks()
    assert batch.edits.filter(status=Edit.Status.FAILED).count() == 1

    response = logged_in.post(reverse("batch-retry", args=[batch.pk]))

    assert response.status_code == 302
    run_tasks()
    assert set(batch.edits.values_list("status", flat=True)) == {Edit.Status.SUCCEEDED}


def test_cancel_batch_cancels_every_edit_under_way(logged_in, alice, simulator):
    batch = make_batch(alice, count=6)
    logged_in.post(reverse("batch-cancel", args=[batch.pk]))
    run_tasks()
    assert set(batch.edits.values_list("status", flat=True)) == {Edit.Status.CANCELLED}
    assert not [r for r in simulator.received if r["path"].endswith("/images/edits")]


def test_download_all_gives_the_chosen_result_of_each_edit_named_after_its_image(logged_in, alice):
    batch = make_batch(alice, count=2)
    run_tasks()
    second = batch.edits.order_by("pk").last()
    second_result = second.results.get()

    response = logged_in.get(reverse("batch-download", args=[batch.pk]))

    assert response["Content-Type"] == "application/zip"
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="batch-{batch.pk}-make-it-sepia.zip"'
    )
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["001-photo-0.png", "002-photo-1.png"]
    with second_result.file.open("rb") as stored:
        assert archive.read("002-photo-1.png") == stored.read()


def test_the_status_poll_is_204_while_nothing_changed_and_286_once_all_ended(logged_in, alice):
    batch = make_batch(alice, count=2)
    url = reverse("batch-status", args=[batch.pk])
    signature = batches.progress(batch).signature
    assert logged_in.get(url, {"seen": signature}).status_code == 204
    run_tasks()
    response = logged_in.get(url, {"seen": signature})
    assert response.status_code == 286
    assert "2 succeeded" in response.content.decode()


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("batch-detail", "get"), ("batch-status", "get"), ("batch-download", "get"),
        ("batch-retry", "post"), ("batch-cancel", "post"),
    ],
)  # fmt: skip
def test_another_persons_batch_is_not_found(client, alice, bob, name, method):
    batch = make_batch(alice, count=1)
    client.force_login(bob)
    assert getattr(client, method)(reverse(name, args=[batch.pk])).status_code == 404
    assert batch.edits.get().status == Edit.Status.QUEUED  # bob's cancel did nothing


def test_the_admin_lists_batches(client, alice, django_user_model):
    make_batch(alice, count=1)
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    page = client.get(reverse("admin:edits_batch_changelist")).content.decode()
    assert "make it sepia" in page
