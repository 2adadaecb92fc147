"""Per-person limits: edits started per minute, edits under way, failed log-ins."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from imageedits.edits.models import Edit

from .conftest import empty_test_redis, make_png

pytestmark = pytest.mark.django_db


def post_edit(client):
    image = SimpleUploadedFile("a.png", make_png(), "image/png")
    data = {"prompt": "blur", "model": "gpt-image-2", "size": "auto", "images": [image]}
    return client.post(reverse("edit-new"), data)


def test_edits_under_way_are_limited(client, alice, settings):
    settings.EDITS_IN_FLIGHT = 2
    client.force_login(alice)
    assert post_edit(client).status_code == 302
    assert post_edit(client).status_code == 302
    refused = post_edit(client)
    assert refused.status_code == 400
    assert "You have 2 edits under way, the most at once." in refused.content.decode()
    assert Edit.objects.count() == 2

    Edit.objects.filter(pk=Edit.objects.first().pk).update(status=Edit.Status.SUCCEEDED)
    assert post_edit(client).status_code == 302


def test_edits_per_minute_are_limited(client, alice, settings):
    settings.EDITS_PER_MINUTE = 2
    client.force_login(alice)
    post_edit(client), post_edit(client)
    Edit.objects.update(status=Edit.Status.SUCCEEDED)
    refused = post_edit(client)
    assert "You have started 2 edits in the last minute." in refused.content.decode()
    assert Edit.objects.count() == 2


def test_the_limits_are_per_person(client, alice, bob, settings):
    settings.EDITS_IN_FLIGHT = 1
    client.force_login(alice)
    post_edit(client)
    client.force_login(bob)
    assert post_edit(client).status_code == 302


def log_in(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_failed_log_ins_are_throttled_per_username(client, alice, settings):
    settings.LOGIN_FAILURES_PER_USER = 3
    for _ in range(3):
        assert log_in(client, "alice", "wrong").status_code == 200
    refused = log_in(client, "alice", "alice-password")  # even the right password, for now
    assert "Too many failed log-ins. Try again in 15 minutes." in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert log_in(client, "bob-not-throttled", "x").status_code == 200


def test_failed_log_ins_are_throttled_per_address(client, alice, bob, settings):
    settings.LOGIN_FAILURES_PER_ADDRESS = 2
    log_in(client, "alice", "wrong"), log_in(client, "carol", "wrong")
    refused = log_in(client, "bob", "bob-password")
    assert "Too many failed log-ins" in refused.content.decode()


def test_with_cache_url_web_processes_share_the_failure_counts(client, alice, settings, tmp_path):
    redis_url = empty_test_redis()
    settings.CACHES = {
        alias: {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
        for alias in ("default", "shared")
    } | {"fragments": settings.CACHES["fragments"]}
    settings.LOGIN_FAILURES_PER_USER = 3
    for _ in range(3):
        log_in(client, "alice", "wrong")

    # Another web process, configured by the environment alone, refuses alice at once.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update(CACHE_URL=redis_url, LOGIN_FAILURES_PER_USER="3", VAR_DIR=str(tmp_path))
    attempt = (
        "from imageedits.edits.throttle import ThrottledAuthenticationForm as Form;"
        "print(Form(data={'username': 'alice', 'password': 'alice-password'}).errors.as_text())"
    )
    other_process = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", attempt],
        cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert "Too many failed log-ins" in other_process.stdout, other_process.stderr


def test_a_good_log_in_works_below_the_limit(client, alice):
    log_in(client, "alice", "wrong")
    assert log_in(client, "alice", "alice-password").status_code == 302


def test_behind_our_proxy_the_address_it_appended_is_the_persons(rf, settings):
    from imageedits.edits.throttle import client_address

    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9", REMOTE_ADDR="10.0.0.2")
    settings.BEHIND_TLS_PROXY = False
    assert client_address(request) == "10.0.0.2"
    settings.BEHIND_TLS_PROXY = True
    assert client_address(request) == "203.0.113.9"  # not the forgeable first entry


@pytest.mark.django_db(transaction=True)
def test_twelve_submissions_at_once_pass_a_limit_of_five_five_times(
    live_server, client, alice, settings
):
    """Counted and created in one transaction that holds the person's row: concurrent
    submissions are counted one after another."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    settings.EDITS_IN_FLIGHT = 5
    settings.EDITS_PER_MINUTE = 100
    client.force_login(alice)
    cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    with httpx.Client(base_url=live_server.url, cookies=cookies) as http:
        http.get("/edits/new/")
        token = http.cookies["csrftoken"]
    cookies["csrftoken"] = token
    start = threading.Barrier(12)
    image = make_png()

    def submit(_) -> int:
        with httpx.Client(base_url=live_server.url, cookies=cookies, timeout=60) as http:
            data = {"prompt": "blur", "model": "gpt-image-2", "size": "auto",
                    "csrfmiddlewaretoken": token}  # fmt: skip
            start.wait()
            response = http.post("/edits/new/", data=data, files={"images": ("a.png", image)})
            return response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = sorted(pool.map(submit, range(12)))
    assert statuses == [302] * 5 + [400] * 7
    assert Edit.objects.filter(owner=alice).count() == 5


def test_try_again_counts_as_an_edit_under_way(client, alice, settings):
    settings.EDITS_IN_FLIGHT = 1
    client.force_login(alice)
    post_edit(client)
    failed = Edit.objects.get()
    Edit.objects.filter(pk=failed.pk).update(status=Edit.Status.FAILED)
    post_edit(client)  # now one under way
    response = client.post(reverse("edit-rerun", args=[failed.pk]), follow=True)
    assert "You have 1 edit under way, the most at once." in response.content.decode()
    assert Edit.objects.get(pk=failed.pk).status == Edit.Status.FAILED


@pytest.mark.django_db(transaction=True)
def test_twelve_guesses_at_once_get_five_tries(live_server, client, alice, settings):
    """Each attempt is counted before the password is checked: parallel guesses cannot all
    slip in before the first failure is counted."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    settings.LOGIN_FAILURES_PER_USER = 5
    start = threading.Barrier(12)

    def guess(number: int) -> str:
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            http.get("/login/")
            token = http.cookies["csrftoken"]
            start.wait()
            answer = http.post("/login/", data={"username": "alice", "password": f"guess-{number}",
                                                "csrfmiddlewaretoken": token})  # fmt: skip
            return "throttled" if "Too many failed log-ins" in answer.text else "checked"

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = sorted(pool.map(guess, range(12)))
    assert outcomes == ["checked"] * 5 + ["throttled"] * 7
    refused = log_in(client, "alice", "alice-password")  # the same counters as the live server
    assert "Too many failed log-ins" in refused.content.decode()


def test_a_right_password_gives_its_place_back(client, alice, settings):
    settings.LOGIN_FAILURES_PER_USER = 2
    for _ in range(5):  # five good log-ins in a row use none of the two failures allowed
        assert log_in(client, "alice", "alice-password").status_code == 302
        client.logout()
    log_in(client, "alice", "wrong")
    assert log_in(client, "alice", "alice-password").status_code == 302
