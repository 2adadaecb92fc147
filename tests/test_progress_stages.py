"""While an edit runs its page shows the stage it is at (queued, sent, retrying, downloading)
and the time so far against the model's typical duration; the page counts the seconds on by
itself, so a poll re-renders only when the edit moves."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from imageedits.edits import catalog, images, services
from imageedits.edits.models import Edit, Submission

from .conftest import make_png

pytestmark = pytest.mark.django_db


def create(owner, model="gpt-image-2") -> Edit:
    upload = images.reencode(make_png())
    return services.create_edit(owner, services.NewEdit("sepia", model, "", [upload], []))


def current_stage(client, edit) -> str:
    page = client.get(reverse("edit-status", args=[edit.pk])).content.decode()
    return page.split('aria-current="step">', 1)[1].split("<", 1)[0]


def test_the_stages_follow_the_request(client, alice):
    edit = create(alice)
    client.force_login(alice)
    assert current_stage(client, edit) == "Queued"

    edit.mark_running()
    submission = edit.submissions.get()
    submission.mark_running()
    assert current_stage(client, edit) == "Sent"

    submission.mark_retrying("server_error", "The image service had an internal error.", None)
    assert current_stage(client, edit) == "Retrying"

    submission.mark_running()
    submission.mark_submitted("task-1", "trace-1")  # waits for a callback
    assert current_stage(client, edit) == "Sent"
    submission.record_callback()
    assert current_stage(client, edit) == "Downloading"

    # The callback of an earlier try says nothing of the one sent after it.
    submission.mark_retrying("timeout", "The image service took too long.", None)
    submission.mark_running()
    submission.mark_submitted("task-2", "trace-2")
    assert current_stage(client, edit) == "Sent"


def test_an_answer_on_the_open_connection_is_downloading(client, alice):
    edit = create(alice)
    edit.mark_running()
    submission = edit.submissions.get()
    submission.mark_running()
    submission.mark_answered("task-1", "trace-1")
    assert Submission.objects.get(pk=submission.pk).stage == "downloading"


def test_the_time_so_far_is_shown_against_the_models_typical_duration(client, alice):
    edit = create(alice, model="nano-banana")
    Edit.objects.filter(pk=edit.pk).update(created_at=timezone.now() - timedelta(seconds=38))
    client.force_login(alice)
    page = client.get(edit.get_absolute_url()).content.decode()
    typical = catalog.MODELS["nano-banana"].typical_seconds
    # 38 s, or 39 on a slow machine
    assert re.search(rf'data-elapsed="3[89]" data-typical="{typical}"', page)
    assert re.search(rf"3[89] s of about {typical} s", page)
    assert re.search(rf'<progress id="elapsed-{edit.pk}" max="{typical}" value="3[89]">', page)


def test_every_model_has_a_typical_duration():
    assert all(model.typical_seconds > 0 for model in catalog.MODELS.values())
