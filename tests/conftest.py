import io
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.db import connections
from PIL import Image

from imageedits.simulator import SimulatorServer

try:
    from django_tasks_rq.backend import Job
except ImportError:  # only `make test-rq` needs it
    Job = None

# Playwright's sync API keeps an event loop running in the main thread; Django's ORM refuses to
# run there unless told it is safe, which it is: nothing else runs in that loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SIMULATOR_TOKEN = "sk-test-simulator"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Tests of the Redis-backed pieces (RQ, the shared cache) empty this database first, so that
# nothing of an earlier run is left in it.
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def empty_test_redis() -> str:
    """TEST_REDIS_URL, emptied; the test is skipped where no Redis runs."""
    try:
        redis.Redis.from_url(TEST_REDIS_URL).flushdb()
    except redis.ConnectionError:
        pytest.skip(f"Redis is not running at {TEST_REDIS_URL}")
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def simulator():
    """The offline upstream, a real HTTP server on a free port."""
    server = SimulatorServer(host="127.0.0.1", port=0, token=SIMULATOR_TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def openai_simulator():
    """The simulator speaking as api.openai.com does: multipart only, b64 answers, no callbacks."""
    server = SimulatorServer(host="127.0.0.1", port=0, token=SIMULATOR_TOKEN, flavour="openai")
    server.start()
    yield server
    server.stop()


# `make test-stack` runs the whole suite with images in an S3 bucket (moto's server) instead of
# local files; the few tests about local files alone are marked `local_files`.
ON_S3 = os.environ.get("TEST_STORAGE") == "s3"
S3_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server, a real HTTP server on a free port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def use_new_bucket(settings, s3_server: str):
    """A new, empty, private bucket as the default storage; returns its boto3 client and name."""
    import uuid

    import boto3

    name = f"imageedits-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1", **S3_KEYS)
    s3.create_bucket(Bucket=name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": name, "endpoint_url": s3_server, "region_name": "us-east-1",
                "addressing_style": "path", "signature_version": "s3v4", "file_overwrite": False,
                "default_acl": None, "access_key": "testing", "secret_key": "testing",
            },
        },
    }  # fmt: skip
    csp = {**settings.SECURE_CSP, "img-src": [*settings.SECURE_CSP["img-src"], s3_server]}
    settings.SECURE_CSP = csp  # the browser follows the signed redirects there
    return s3, name


def pytest_runtest_setup(item):
    if ON_S3 and item.get_closest_marker("local_files"):
        pytest.skip("about local files (MEDIA_ROOT); make test-stack stores images in S3")


@pytest.fixture(autouse=True)
def _app_settings(request, settings, simulator, tmp_path):
    cache.clear()  # log-in failure counters
    caches["shared"].clear()  # sessions and users of earlier tests, whose rows are gone
    caches["fragments"].clear()  # cards of earlier tests' edits, whose ids come round again
    simulator.reset()
    settings.OPENAI_BASE_URL = f"{simulator.url}/openai"
    settings.OPENAI_API_KEY = SIMULATOR_TOKEN
    settings.OPENAI_FLAVOUR = ""
    settings.PUBLIC_BASE_URL = ""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.IMAGE_FETCH_ALLOWED_HOSTS = [simulator.url.split("://", 1)[1]]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if ON_S3:
        use_new_bucket(settings, request.getfixturevalue("s3_server"))


def make_png(width=64, height=48, color=(200, 40, 40), image_format="PNG") -> bytes:
    """A small image with a distinct left half, so edits that move pixels are visible."""
    image = Image.new("RGB", (width, height), color)
    for x in range(width // 2):
        for y in range(height):
            image.putpixel((x, y), (20, 120, 220))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.com", "alice-password")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", "bob-password")


@pytest.fixture
def logged_in(client, alice):
    """The test client, logged in as alice."""
    client.force_login(alice)
    return client


@dataclass(frozen=True)
class Served:
    status_code: int
    content_type: str
    disposition: str
    content: bytes
    app: object  # the app's own response (a redirect, with a bucket)


def get_image(client, url: str) -> Served:
    """An image view's answer as the browser ends up with it: the file the app streams, or,
    with images in a bucket, what the app's signed redirect leads to."""
    import httpx

    response = client.get(url)
    if response.status_code == 302 and response["Location"].startswith("http"):
        signed = httpx.get(response["Location"])
        headers = signed.headers
        return Served(signed.status_code, headers.get("content-type", ""),
                      headers.get("content-disposition", ""), signed.content, response)  # fmt: skip
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return Served(response.status_code, response.get("Content-Type", ""),
                  response.get("Content-Disposition", ""), content, response)  # fmt: skip


@pytest.fixture
def stored_files(settings):
    """Every stored file's name (under MEDIA_ROOT, or in the bucket), to check nothing is left
    behind."""

    def list_files() -> list[str]:
        options = settings.STORAGES["default"].get("OPTIONS", {})
        if "bucket_name" in options:
            import boto3

            s3 = boto3.client(
                "s3", endpoint_url=options["endpoint_url"], region_name="us-east-1", **S3_KEYS
            )
            listed = s3.list_objects_v2(Bucket=options["bucket_name"]).get("Contents", [])
            return sorted(item["Key"] for item in listed)
        root = Path(settings.MEDIA_ROOT)
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    return list_files


@pytest.fixture
def worker(transactional_db):
    """The backend's own worker, running in a thread against the test database."""
    if on_rq():
        stop = threading.Event()
        thread = threading.Thread(target=run_rq_jobs, args=(False, stop), daemon=True)
        thread.start()
        yield thread
        stop.set()
        thread.join(timeout=10)
        return
    from django_tasks_db.management.commands.db_worker import Worker

    db_worker = Worker(
        queue_names=["default"], interval=0.1, batch=False, backend_name="default",
        startup_delay=False, max_tasks=None, worker_id="test-worker", excluded_queue_names=[],
    )  # fmt: skip

    def run() -> None:
        try:
            db_worker.run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield db_worker
    db_worker.running = False
    thread.join(timeout=10)


def on_rq() -> bool:
    """Whether this run uses the RQ backend (`make test-rq`) instead of django-tasks-db."""
    return settings.TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend"


@dataclass(frozen=True)
class QueuedTask:
    name: str
    args: list
    run_after: datetime | None


def queued(task_name: str = "") -> list[QueuedTask]:
    """The pipeline's tasks not yet run (`task_name`'s only, if given), due or deferred."""
    if on_rq():
        queue = rq_queue()
        job_ids = [*queue.get_job_ids(), *queue.scheduled_job_registry.get_job_ids()]
        tasks = []
        for job in Job.fetch_many(job_ids, connection=queue.connection):
            if job is not None:
                run_after = job.task_result.task.run_after
                tasks.append(
                    QueuedTask(job.func_name.rsplit(".", 1)[-1], list(job.args), run_after)
                )
    else:
        from django_tasks_db.models import DBTaskResult

        tasks = [
            QueuedTask(row.task_path.rsplit(".", 1)[-1], row.args_kwargs["args"], row.run_after)
            for row in DBTaskResult.objects.filter(status="READY")
        ]
    return [task for task in tasks if task.name == task_name or not task_name]


def run_tasks() -> int:
    """Run every task that is due, in this thread, one after another as a worker would, until
    none is left (tasks deferred to later stay queued). Returns how many ran."""
    if on_rq():
        return run_rq_jobs(burst=True)
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    runner = Worker(
        queue_names=["default"], interval=0, batch=True, backend_name="default",
        startup_delay=False, max_tasks=None, worker_id="test-runner", excluded_queue_names=[],
    )  # fmt: skip
    ran = 0
    while row := DBTaskResult.objects.ready().filter(backend_name="default").first():
        row.claim(runner.worker_id)
        runner.run_task(row)
        ran += 1
    return ran


def run_edit(edit) -> None:
    """Start the edit and run its tasks until only deferred ones (retries, checks) are left."""
    from imageedits.edits import pipeline

    pipeline.start_edit.enqueue(edit.pk)
    run_tasks()


# --- RQ (`make test-rq`): the same queue as production, worked in this process -----------------


def rq_queue():
    import django_rq

    return django_rq.get_queue("default", job_class=Job)


def run_rq_jobs(burst: bool, stop: threading.Event | None = None) -> int:
    """RQ's own SimpleWorker in this thread: move due deferred jobs to the queue and run what
    is there; once (burst) or until `stop` is set."""
    from rq import SimpleWorker
    from rq.scheduler import RQScheduler
    from rq.timeouts import TimerDeathPenalty

    class ThreadWorker(SimpleWorker):
        death_penalty_class = TimerDeathPenalty  # SIGALRM works in the main thread only

        def _install_signal_handlers(self) -> None:
            pass  # likewise; the test stops it

    queue = rq_queue()
    scheduler = RQScheduler([queue], connection=queue.connection)
    ran = 0
    while not (stop is not None and stop.is_set()):
        if scheduler.acquire_locks():
            scheduler.enqueue_scheduled_jobs()
            scheduler.release_locks()
        if queue.count:
            worker = ThreadWorker([queue], connection=queue.connection, job_class=Job)
            before = queue.finished_job_registry.count + queue.failed_job_registry.count
            worker.work(burst=True, logging_level="WARNING")
            ran += queue.finished_job_registry.count + queue.failed_job_registry.count - before
        elif burst:
            break
        else:
            time.sleep(0.05)
    return ran


@pytest.fixture(autouse=True)
def _empty_rq_queue(request):
    """On RQ, each test starts with an empty queue (its own Redis database, see Makefile)."""
    if on_rq():
        rq_queue().connection.flushdb()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not at {CHROMIUM}: install Debian's chromium package.")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def wait_for_task_record(submission, seconds: float = 10) -> None:
    """Until the upstream's task record for `submission` says it is done (well or not)."""
    import time

    from imageedits.edits import upstream

    deadline = time.monotonic() + seconds
    while True:
        try:
            if upstream.retrieve_task(submission.task_id) is not None:
                return
        except upstream.TaskFailed:
            return
        assert time.monotonic() < deadline, "the upstream did not finish"
        time.sleep(0.05)


# --- Browser helpers ---------------------------------------------------------------------------


def log_in(page, username="alice", password="alice-password"):
    from playwright.sync_api import expect

    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="New edit")).to_be_visible()
    page.wait_for_load_state()  # the form's scripts (htmx, app.js, mask.js) are set up


def open_account_menu(page):
    """Open the menu under the person's name in the top bar (Usage, API tokens, Log out)."""
    page.get_by_role("banner").locator(".user-menu > summary").click()


def paint(page, start, end, image_size):
    """Drag the mouse across the mask canvas between two points given in image pixels."""
    width, height = image_size
    canvas = page.get_by_label("Mask painter: paint where the image should change")
    canvas.scroll_into_view_if_needed()  # the mouse only reaches what is in the viewport
    box = canvas.bounding_box()

    def at(point):
        x, y = point
        return box["x"] + x * box["width"] / width, box["y"] + y * box["height"] / height

    page.mouse.move(*at(start))
    page.mouse.down()
    page.mouse.move(*at(end), steps=12)
    page.mouse.up()
