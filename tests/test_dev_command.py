"""`make run` is `manage.py dev`: one foreground command that serves the app with a worker and the
simulator, prints the URL and the demo login, and stops everything on Ctrl-C. It runs once with
the default tasks backend (django-tasks-db) and once with the scale-out one (RQ on Redis)."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from .conftest import TEST_REDIS_URL, empty_test_redis

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, seconds: float = 30) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def worker_processes(var_dir: str, name: str) -> int:
    """How many `manage.py <name>` processes of this dev run are running (not counting the
    autoreloader's or a pool's children, which carry the same command line)."""
    commands = {}
    for entry in Path("/proc").iterdir():
        try:
            if f"VAR_DIR={var_dir}".encode() not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            commands[int(entry.name)] = ((entry / "cmdline").read_bytes(), parent)
        except (OSError, ValueError):
            continue  # not a process, or one that just ended
    ours = {pid for pid, (command, _) in commands.items() if name.encode() in command.split(b"\0")}
    return sum(1 for pid in ours if commands[pid][1] not in ours)


def edit_to_the_end(browser: httpx.Client, page: httpx.Response, simulator_port: int) -> str:
    """Submit an edit of a sample image from the new-edit `page`, poll its status as the page
    does until it ends; the last status fragment."""
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    created = browser.post(
        "/edits/new/",
        data={"prompt": "grayscale", "model": "gpt-image-2", "csrfmiddlewaretoken": token,
              "image_urls": f"http://127.0.0.1:{simulator_port}/samples/square.png"},
    )  # fmt: skip
    status_url = re.search(r'hx-get="([^"]+/status/)', created.text)[1]
    deadline = time.monotonic() + 30
    while (status := browser.get(status_url)).status_code != 286:
        assert time.monotonic() < deadline, "the edit did not finish"
        time.sleep(0.3)
    return status.text


def is_listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def own_environment(var_dir, simulator_port: int, **settings: str) -> dict[str, str]:
    """This machine's environment for a run of its own: its own SQLite database and files, the
    simulator it starts, and `settings`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "PUBLIC_BASE_URL", "DJANGO_", "DATABASE_URL", "TASKS_"))
    }
    env.update(
        VAR_DIR=str(var_dir), SIMULATOR_URL=f"http://127.0.0.1:{simulator_port}",
        SIMULATOR_LATENCY="0.2", **settings,
    )  # fmt: skip
    return env


@pytest.fixture(params=["django_tasks_db.DatabaseBackend", "django_tasks_rq.RQBackend"])
def dev_server(request, tmp_path):
    web_port, simulator_port = free_port(), free_port()
    env = own_environment(
        tmp_path, simulator_port, DEMO_PASSWORD="a-demo-password", TASKS_BACKEND=request.param
    )
    if request.param == "django_tasks_rq.RQBackend":
        env["REDIS_URL"] = empty_test_redis()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "dev", "--port", str(web_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    yield process, web_port, simulator_port, request.param, str(tmp_path)
    if process.poll() is None:  # the test failed midway: stop everything dev started, too
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_dev_serves_app_worker_and_simulator_and_stops_them_all(dev_server):
    process, web_port, simulator_port, backend, var_dir = dev_server
    base = f"http://127.0.0.1:{web_port}"
    assert wait_for(f"{base}/login/").status_code == 200
    assert wait_for(f"http://127.0.0.1:{simulator_port}/healthz").status_code == 200

    with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as browser:
        login = browser.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)[1]
        page = browser.post(
            "/login/",
            data={"username": "demo", "password": "a-demo-password", "csrfmiddlewaretoken": token},
        )
        assert "New edit" in page.text

        assert "Edited image 1" in edit_to_the_end(browser, page, simulator_port)
    if backend == "django_tasks_rq.RQBackend":
        assert redis.Redis.from_url(TEST_REDIS_URL).keys("rq:job:*"), "no job went through Redis"
        # One pool of WORKER_PROCESSES (2) workers, each registered with RQ.
        assert worker_processes(var_dir, "rqworker-pool") == 1
        assert redis.Redis.from_url(TEST_REDIS_URL).scard("rq:workers") == 2
    else:
        assert worker_processes(var_dir, "db_worker") == 2

    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert f"running at {base}/" in output
    assert "Log in as demo / a-demo-password" in output
    assert "callbacks on" in output and "2 worker processes" in output
    assert not is_listening(web_port) and not is_listening(simulator_port)


def test_serve_runs_the_production_setup_and_its_access_log_keeps_secrets(tmp_path):
    """`make serve`: DEBUG off, static files collected and served with far-future caching,
    gunicorn in front, workers and reaper behind; an edit goes through; the access log shows
    paths with their secrets redacted."""
    import secrets

    web_port, simulator_port = free_port(), free_port()
    env = own_environment(
        tmp_path, simulator_port, DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50),
        SECURE_SSL_REDIRECT="0", SECURE_COOKIES="0", SECURE_HSTS_SECONDS="0", WEB_CONCURRENCY="1",
    )  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(web_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{web_port}"
        login = wait_for(f"{base}/login/", seconds=60)
        assert login.status_code == 200
        assert login.headers["server"].startswith("gunicorn")
        stylesheet = re.search(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', login.text)[1]
        css = httpx.get(base + stylesheet)
        assert css.status_code == 200 and "max-age=315360000" in css.headers["cache-control"]
        subprocess.run(
            [sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", "ops",
             "--email", "ops@example.com"],
            cwd=ROOT, env={**env, "DJANGO_SUPERUSER_PASSWORD": "an-ops-password"}, check=True,
            capture_output=True,
        )  # fmt: skip
        with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as browser:
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)[1]
            browser.cookies.update(login.cookies)
            page = browser.post(
                "/login/",
                data={"username": "ops", "password": "an-ops-password",
                      "csrfmiddlewaretoken": token},
            )  # fmt: skip
            assert "New edit" in page.text
            assert "Edited image 1" in edit_to_the_end(browser, page, simulator_port)
            browser.get("/s/AShareTokenNobodyMayRead0123456789abcdefghij/")
            browser.post("/hooks/submissions/1/ACallbackSecretNobodyMayRead/", content=b"{}")
        assert httpx.get(f"{base}/ready/", params={"format": "json"}).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert "imageedits (production setup) is running" in output
    assert '"GET /s/[redacted]/ HTTP/1.1" 404' in output
    assert '"POST /hooks/submissions/1/[redacted]/ HTTP/1.1" 404' in output
    assert "AShareTokenNobodyMayRead" not in output and "ACallbackSecretNobodyMayRead" not in output
    assert not is_listening(web_port) and not is_listening(simulator_port)
