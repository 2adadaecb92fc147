"""Candidates: dall-e-2 gets one request with n; every other model gets one request per
candidate, sent at once; results arrive one by one, and some may fail while others succeed."""

import base64

import pytest
from django.urls import reverse

from imageedits.edits import images, pipeline, services, upstream
from imageedits.edits.models import Edit

from .conftest import make_png, run_edit

pytestmark = pytest.mark.django_db(transaction=True)


def create(owner, model="gpt-image-2", candidates=3, prompt="make it sepia") -> Edit:
    upload = images.reencode(make_png(64, 64))
    new = services.NewEdit(prompt, model, "", [upload], [], candidates=candidates)
    return services.create_edit(owner, new)


def edit_requests(simulator) -> list[dict]:
    return [r for r in simulator.received if r["path"].endswith("/images/edits")]


def test_gpt_image_2_fans_out_to_one_request_per_candidate(alice, simulator):
    edit = create(alice, candidates=3)
    run_edit(edit)

    sent = edit_requests(simulator)
    assert len(sent) == 3
    assert all("n" not in request["fields"] for request in sent)
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED
    assert sorted(edit.results.values_list("position", flat=True)) == [0, 1, 2]
    task_ids = {s.task_id for s in edit.submissions.all()}
    assert len(task_ids) == 3 and "" not in task_ids


def test_dall_e_2_gets_one_request_with_n(alice, simulator):
    edit = create(alice, model="dall-e-2", candidates=3)
    run_edit(edit)

    sent = edit_requests(simulator)
    assert len(sent) == 1
    assert sent[0]["fields"]["n"] == ["3"]
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED
    assert edit.submissions.get().n == 3
    assert sorted(edit.results.values_list("position", flat=True)) == [0, 1, 2]


def test_a_model_without_n_never_gets_n(alice, simulator):
    edit = create(alice, model="nano-banana", candidates=2)
    run_edit(edit)
    sent = edit_requests(simulator)
    assert len(sent) == 2
    assert all(set(request["fields"]) == {"model", "prompt"} for request in sent)


def test_some_candidates_failing_leaves_the_others_and_says_so(client, alice, simulator):
    simulator.inject("forbidden", times=1)  # not worth retrying
    edit = create(alice, candidates=3)
    run_edit(edit)

    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED
    assert edit.results.count() == 2
    failed = edit.submissions.get(status="failed")
    assert "content rules" in failed.error_message

    client.force_login(alice)
    page = client.get(reverse("edit-status", args=[edit.pk])).content.decode()
    assert "1 of 3 candidates failed" in page
    assert f"Candidate {failed.index + 1} failed." in page
    assert page.count('alt="Edited image') == 2


def test_every_candidate_failing_fails_the_edit_with_the_reason(alice, simulator):
    simulator.inject("used_up", times=2)
    edit = create(alice, candidates=2)
    run_edit(edit)
    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED
    assert "run out of credit" in edit.error_message
    assert edit.results.count() == 0


def test_results_show_as_they_arrive(client, settings, alice):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:9"  # callbacks go nowhere: we deliver one
    edit = create(alice, candidates=3)
    run_edit(edit)
    first = edit.submissions.get(index=0)
    png = base64.b64encode(make_png()).decode()
    pipeline.finish(first, upstream.EditAnswer(images=[upstream.ResultData(b64_json=png)]))

    client.force_login(alice)
    response = client.get(reverse("edit-status", args=[edit.pk]))
    page = response.content.decode()
    assert response.status_code == 200  # still polling
    assert "1 of 3 results so far" in page
    assert 'alt="Edited image 1"' in page
    assert "Candidate 2: running" in page and "Candidate 3: running" in page


def test_candidates_finish_through_their_own_callbacks(
    live_server, worker, settings, alice, simulator
):
    import time

    settings.PUBLIC_BASE_URL = live_server.url
    simulator.config.latency = 0.3
    edit = create(alice, candidates=3)
    pipeline.start_edit.enqueue(edit.pk)
    deadline = time.monotonic() + 15
    while len(edit_requests(simulator)) < 3:
        assert time.monotonic() < deadline, "the requests were not sent"
        time.sleep(0.05)
    callback_urls = {r["fields"]["callback_url"][0] for r in edit_requests(simulator)}
    assert len(callback_urls) == 3  # one secret and URL per request

    deadline = time.monotonic() + 15
    while Edit.objects.get(pk=edit.pk).is_active:
        assert time.monotonic() < deadline, "the callbacks did not finish the edit"
        time.sleep(0.1)
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED
    assert edit.results.count() == 3
