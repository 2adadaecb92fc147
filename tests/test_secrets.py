"""The API token reaches the upstream and nothing else: no page, log line, error or stored
field, whatever happens to an edit."""

import logging

import pytest
from django.core import serializers
from django.urls import reverse

from imageedits.edits import images, services
from imageedits.edits.models import Edit, Submission

from .conftest import make_png, run_edit

pytestmark = pytest.mark.django_db

TOKEN = "sk-live-9f3b2c1d-do-not-leak"


@pytest.fixture
def secret_token(simulator, settings):
    settings.OPENAI_API_KEY = TOKEN
    original, simulator.token = simulator.token, TOKEN
    yield
    simulator.token = original


def test_the_token_never_leaves_the_upstream_request(client, alice, simulator, secret_token,
                                                     caplog):  # fmt: skip
    caplog.set_level(logging.DEBUG)
    client.force_login(alice)
    for fault in [None, "invalid_token", "500", "malformed", "forbidden", "used_up"]:
        if fault:
            simulator.inject(fault, times=10)
        edit = services.create_edit(
            alice, services.NewEdit("blur", "gpt-image-2", "", [images.reencode(make_png())], [])
        )
        run_edit(edit)
        assert simulator.received[-1]["authorization"] == f"Bearer {TOKEN}"
        simulator.reset()
        pages = [
            client.get(reverse("edit-new")).content.decode(),
            client.get(edit.get_absolute_url()).content.decode(),
            client.get(reverse("edit-status", args=[edit.pk])).content.decode(),
        ]
        assert all(TOKEN not in page for page in pages), fault

    stored = serializers.serialize("json", [*Edit.objects.all(), *Submission.objects.all()])
    assert TOKEN not in stored
    assert TOKEN not in caplog.text
    assert Edit.objects.filter(status=Edit.Status.SUCCEEDED).exists()
    assert Edit.objects.filter(error_code="invalid_token").exists()
