"""`make scale-test`: the app spread over processes as a deployment runs it, under load.

Two gunicorn web processes and a pool of three RQ workers (and the reaper), on PostgreSQL, Redis
and an S3 bucket (moto's server), with the simulator as the upstream (SCALE_LATENCY seconds an
edit, callbacks on). Ten people log in and submit SCALE_EDITS edits in all, at once, each
polling its edit's status as the page does. Then it checks that every edit ended, that no
request reached the upstream twice, and that no object in the bucket is an orphan, and reports
the time from submit to result as people saw it (p50, p95). Exits non-zero when a check fails.
"""

import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, manage, wait_for  # noqa: E402
from imageedits.edits.management.topology import RQ_POOL  # noqa: E402
from imageedits.simulator import SimulatorServer  # noqa: E402

POSTGRES = os.environ.get("SCALE_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DATABASE = "imageedits_scale"
REDIS_URL = os.environ.get("SCALE_REDIS_URL", "redis://127.0.0.1:6379/13")
PEOPLE = 10
EDITS = int(os.environ.get("SCALE_EDITS", 60))
LATENCY = float(os.environ.get("SCALE_LATENCY", 2))
TOKEN = "sk-scale"


def photo() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def fresh_database() -> str:
    with psycopg.connect(POSTGRES.replace("postgres://", "postgresql://"), autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {DATABASE}")
    return POSTGRES.rsplit("/", 1)[0] + f"/{DATABASE}"


def person_edits(base: str, username: str, count: int, image: bytes) -> list[float]:
    """Log in, submit `count` edits at once, poll each until it ends: seconds to each result."""
    with httpx.Client(base_url=base, follow_redirects=True, timeout=60) as browser:
        page = browser.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
        browser.post("/login/", data={"username": username, "password": "scale-password",
                                      "csrfmiddlewaretoken": token})  # fmt: skip
        token = browser.cookies["csrftoken"]

        def one(number: int) -> float:
            started = time.monotonic()
            created = browser.post(
                "/edits/new/",
                data={"prompt": f"sepia {number}", "model": "gpt-image-2",
                      "csrfmiddlewaretoken": token},
                files={"images": ("photo.png", image, "image/png")},
            )  # fmt: skip
            status_url = re.search(r'hx-get="([^"]+/status/)', created.text)[1]
            while (status := browser.get(status_url)).status_code != 286:
                time.sleep(2)  # as the page polls
            if "Edited image 1" not in status.text:
                raise AssertionError(f"{username}'s edit {number} did not succeed")
            return time.monotonic() - started

        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(one, range(count)))


def main() -> None:
    # moto's S3 server in a process of its own, as a real bucket would be.
    s3_port = free_port()
    s3_server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    s3_url = f"http://127.0.0.1:{s3_port}"
    wait_for(f"{s3_url}/moto-api/")
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(Bucket="imageedits-scale")
    simulator = SimulatorServer(port=0, token=TOKEN, latency=LATENCY)
    simulator.start()
    redis.Redis.from_url(REDIS_URL).flushdb()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OPENAI_"))},
        "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0", "SECURE_HSTS_SECONDS": "0",
        "VAR_DIR": str(ROOT / "var" / "scale"), "DATABASE_URL": fresh_database(),
        "DB_POOL_SIZE": "8", "TASKS_BACKEND": "django_tasks_rq.RQBackend", "REDIS_URL": REDIS_URL,
        "CACHE_URL": REDIS_URL, "AWS_STORAGE_BUCKET_NAME": "imageedits-scale",
        "AWS_S3_ENDPOINT_URL": s3_url, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "OPENAI_BASE_URL": f"{simulator.url}/openai",
        "OPENAI_API_KEY": TOKEN, "OPENAI_FLAVOUR": "ace", "PUBLIC_BASE_URL": base,
        "IMAGE_FETCH_ALLOWED_HOSTS": simulator.url.split("://", 1)[1],
        "EDITS_IN_FLIGHT": "20", "EDITS_PER_MINUTE": "100", "WEB_CONCURRENCY": "2",
    }  # fmt: skip
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")
    users = "; ".join(
        f"User.objects.create_user('person{n}', password='scale-password')" for n in range(PEOPLE)
    )
    manage(env, "shell", "--no-imports", "-v", "0", "-c",
           f"from django.contrib.auth.models import User; {users}")  # fmt: skip
    commands = {
        "web": [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind",
                f"127.0.0.1:{port}"],
        "workers": [sys.executable, "manage.py", *RQ_POOL, "--num-workers", "3"],
        "reaper": [sys.executable, "manage.py", "reap", "--every", "5"],
    }  # fmt: skip
    logs = open(ROOT / "var" / "scale.log", "w")  # noqa: SIM115 - closed below
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT,
                         start_new_session=True)
        for command in commands.values()
    ]  # fmt: skip
    try:
        wait_for(f"{base}/health/")
        image = photo()
        started = time.monotonic()
        shares = [EDITS // PEOPLE + (n < EDITS % PEOPLE) for n in range(PEOPLE)]
        timings: list[float] = []
        lock = threading.Lock()

        def person(n: int) -> None:
            done = person_edits(base, f"person{n}", shares[n], image)
            with lock:
                timings.extend(done)

        with ThreadPoolExecutor(max_workers=PEOPLE) as pool:
            list(pool.map(person, range(PEOPLE)))
        elapsed = time.monotonic() - started
        report(env, s3, simulator, timings, elapsed)
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        logs.close()
        simulator.stop()
        s3_server.terminate()
        s3_server.wait()


def report(env, s3, simulator, timings: list[float], elapsed: float) -> None:
    check = (
        "from imageedits.edits.models import Edit, Submission, InputImage, ResultImage; "
        "from django.db.models import Count; "
        "print(Edit.objects.filter(status__in=['queued', 'running']).count(), "
        "Edit.objects.count(), Submission.objects.count(), "
        "Submission.objects.exclude(task_id='').values('task_id').annotate(n=Count('id'))"
        ".filter(n__gt=1).count()); "
        "names = set(); "
        "[names.update(x for x in row if x) for row in "
        "InputImage.objects.values_list('file', 'preview')]; "
        "[names.update(x for x in row if x) for row in "
        "ResultImage.objects.values_list('file', 'raw_file', 'thumbnail', 'preview')]; "
        "print(*sorted(names))"
    )
    output = manage(env, "shell", "--no-imports", "-v", "0", "-c", check)
    counts, _, referenced = output.partition("\n")
    under_way, edits, requests, shared_tasks = (int(n) for n in counts.split())
    referenced = set(referenced.split())
    listed = s3.list_objects_v2(Bucket="imageedits-scale").get("Contents", [])
    keys = {item["Key"] for item in listed}
    sent = sum(r["path"].endswith("/images/edits") for r in simulator.received)
    cuts = statistics.quantiles(timings, n=20, method="inclusive")
    print(f"\nscale: {edits} edits from {PEOPLE} people in {elapsed:.0f} s; 2 web processes, "
          f"3 workers, PostgreSQL + RQ + S3; upstream latency {LATENCY:g} s")  # fmt: skip
    print(f"  time to result as people saw it: p50 {statistics.median(timings):.1f} s, "
          f"p95 {cuts[18]:.1f} s")  # fmt: skip
    print(f"  under way at the end: {under_way}; upstream requests: {sent} for {requests} "
          f"requests; task ids used twice: {shared_tasks}")  # fmt: skip
    print(f"  bucket objects: {len(keys)}, referenced: {len(referenced)}, "
          f"orphans: {len(keys - referenced)}")  # fmt: skip
    problems = []
    if edits != EDITS or under_way:
        problems.append(f"{under_way} of {edits} edits did not end")
    if sent != requests or shared_tasks:
        problems.append(f"{sent} upstream requests for {requests}: some were sent twice")
    if keys != referenced:
        problems.append(f"orphans {sorted(keys - referenced)}, missing {sorted(referenced - keys)}")
    if problems:
        raise SystemExit("scale test failed: " + "; ".join(problems))


if __name__ == "__main__":
    main()
