"""/health/ and /ready/, as a load balancer probes them: no log-in, plain answers, and a
failure of any service the app needs turns /ready/ to a 500."""

import pytest

pytestmark = pytest.mark.django_db


def test_health_says_the_process_answers(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health/")
    assert (response.status_code, response.content) == (200, b"ok")


def test_ready_checks_database_cache_storage_and_queue(client, stored_files):
    response = client.get("/ready/", {"format": "json"})
    assert response.status_code == 200
    checks = response.json()
    names = " ".join(checks)
    for service in ("Database", "Cache", "Storage", "TaskQueue"):
        assert service in names
    assert all(result == "OK" for result in checks.values()), checks
    assert stored_files() == []  # the storage probe cleans up after itself
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.local_files
def test_ready_fails_when_storage_cannot_be_written(client, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("storage cannot write below a file")
    settings.MEDIA_ROOT = blocker
    response = client.get("/ready/", {"format": "json"})
    assert response.status_code == 500
    assert any(result != "OK" for result in response.json().values())


def test_probes_over_plain_http_are_not_redirected_in_production(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/health/").status_code == 200
    assert client.get("/edits/").status_code == 301  # everything else goes to HTTPS
