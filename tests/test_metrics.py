"""/metrics/ for Prometheus: only with the token, request timings, and what the database says
about edits, waiting work and the upstream's recent answers."""

from datetime import timedelta

import pytest
from django.utils import timezone

from imageedits.edits import images, services

from .conftest import make_png, run_edit

pytestmark = pytest.mark.django_db


def scrape(client, token="metrics-token") -> str:
    response = client.get("/metrics/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


@pytest.fixture(autouse=True)
def _token(settings):
    settings.METRICS_TOKEN = "metrics-token"


def test_metrics_are_404_without_the_token(client, settings):
    assert client.get("/metrics/").status_code == 404
    assert client.get("/metrics/", headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert client.get("/metrics/", headers={"Authorization": "Bearer ünïcode"}).status_code == 404
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics/", headers={"Authorization": "Bearer "}).status_code == 404


def test_edits_waiting_work_and_the_upstream_are_counted(client, alice, simulator):
    upload = images.reencode(make_png())
    done = services.create_edit(alice, services.NewEdit("p", "gpt-image-2", "", [upload], []))
    run_edit(done)
    simulator.inject("forbidden")
    refused = services.create_edit(alice, services.NewEdit("p", "nano-banana", "", [upload], []))
    run_edit(refused)
    services.create_edit(alice, services.NewEdit("p", "gpt-image-2", "", [upload], []))

    page = scrape(client)
    assert 'imageedits_edits{model="gpt-image-2",status="succeeded"} 1.0' in page
    assert 'imageedits_edits{model="nano-banana",status="failed"} 1.0' in page
    assert 'imageedits_edits{model="gpt-image-2",status="queued"} 1.0' in page
    assert 'imageedits_requests_under_way{status="queued"} 1.0' in page
    assert 'imageedits_upstream_requests_recent{code="",outcome="succeeded"} 1.0' in page
    assert 'imageedits_upstream_requests_recent{code="forbidden",outcome="failed"} 1.0' in page
    assert 'imageedits_upstream_seconds{quantile="0.5"}' in page
    assert "imageedits_queue_depth " in page


def test_old_upstream_answers_leave_the_recent_figures(client, alice):
    upload = images.reencode(make_png())
    edit = services.create_edit(alice, services.NewEdit("p", "gpt-image-2", "", [upload], []))
    run_edit(edit)
    edit.submissions.update(finished_at=timezone.now() - timedelta(hours=1))
    assert "imageedits_upstream_requests_recent{" not in scrape(client)


def test_request_times_are_measured_by_view(client, alice):
    client.force_login(alice)
    client.get("/edits/")
    page = scrape(client)
    assert 'imageedits_request_seconds_count{status="2xx",view="edit-list"}' in page
