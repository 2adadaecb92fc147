"""What the figures of `make bench` share: how long to measure, the table's rows, and the app
itself started as `make serve` runs it (DEBUG off, gunicorn, task workers) on a fresh SQLite
database, with people who can log in."""

import contextlib
import io
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
# BENCH_QUICK=1: every figure, each measured once and small (the test suite runs it this way).
QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = int(os.environ.get("BENCH_RUNS", 1 if QUICK else 5))
PASSWORD = "bench-password"


@dataclass
class Row:
    """One line of docs/benchmarks.md: a figure, its baseline from the same run, the ratio
    (None where the target is absolute) and whether the target is met."""

    figure: str
    measured: str
    baseline: str
    ratio: float | None
    target: str
    met: bool


def median_of(measure, runs: int = RUNS) -> float:
    """The median of `runs` calls of `measure`, which returns one number."""
    return statistics.median(measure() for _ in range(runs))


def photo(width: int = 1024, height: int = 1024) -> bytes:
    """A PNG with some detail in it (flat colours would compress to nothing)."""
    image = Image.radial_gradient("L").resize((width, height)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def textured_photo(side: int = 1024, image_format: str = "PNG") -> bytes:
    """A PNG that compresses like a photograph: noise at several scales in each channel.
    (photo()'s smooth gradient would shrink to nothing and flatter the figures.)"""
    bands = []
    for band in range(3):
        total = Image.new("L", (side, side), 128)
        for scale, weight in ((8, 0.5), (32, 0.3), (128, 0.25), (side, 0.12)):
            noise = Image.effect_noise((scale, scale), 60 + 20 * band)
            total = Image.blend(total, noise.resize((side, side), Image.Resampling.BICUBIC), weight)
        bands.append(total)
    buffer = io.BytesIO()
    Image.merge("RGB", bands).save(buffer, format=image_format)
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def manage(env: dict, *arguments: str) -> str:
    """`manage.py` run with `env`: what it printed, or the bench stopped with its errors."""
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(arguments)} failed:\n{done.stderr}")
    return done.stdout


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class App:
    """The app as `make serve` runs it: gunicorn (`web_processes` processes), `workers` task
    workers and the reaper, on SQLite in a directory of its own, against `upstream_url`.
    `callbacks`: whether the upstream is told to call back (PUBLIC_BASE_URL) or answers the
    request itself. People person0..person{people-1} log in with PASSWORD."""

    def __init__(
        self,
        upstream_url: str,
        token: str,
        *,
        callbacks: bool = True,
        workers: int = 2,
        web_processes: int = 1,
        people: int = 1,
        env: dict | None = None,
    ) -> None:
        self.var = Path(tempfile.mkdtemp(prefix="imageedits-bench-"))
        self.base = f"http://127.0.0.1:{free_port()}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OPENAI_"))},
            "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "SECURE_SSL_REDIRECT": "0",
            "SECURE_COOKIES": "0", "SECURE_HSTS_SECONDS": "0", "VAR_DIR": str(self.var),
            "TASKS_BACKEND": "django_tasks_db.DatabaseBackend", "OPENAI_BASE_URL": upstream_url,
            "OPENAI_API_KEY": token, "OPENAI_FLAVOUR": "ace",
            "PUBLIC_BASE_URL": self.base if callbacks else "",
            "WEB_CONCURRENCY": str(web_processes), "WORKER_PROCESSES": str(workers),
            # The limits are per person; the figures measure the pipeline, not the limits.
            "EDITS_IN_FLIGHT": "100", "EDITS_PER_MINUTE": "1000",
            # One web process throughout, not replaced after its 2,000th request (that replacing
            # is gunicorn.conf.py's guard against slow leaks): its figures stay its own.
            "GUNICORN_CMD_ARGS": "--max-requests 0",
            **(env or {}),
        }  # fmt: skip
        self.env.pop("DATABASE_URL", None)
        self.people = people
        self.processes: list[subprocess.Popen] = []

    def manage(self, *arguments: str) -> str:
        return manage(self.env, *arguments)

    def shell(self, code: str) -> str:
        return self.manage("shell", "--no-imports", "-v", "0", "-c", code)

    def __enter__(self) -> "App":
        from imageedits.edits.management.topology import worker_commands

        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")
        # One password hash for all (hashing takes a second, on purpose), and a session made
        # for each person here, as logging in would: 32 people need not log in one by one.
        sessions = self.shell(
            "from django.contrib.auth.hashers import make_password; "
            "from django.contrib.auth.models import User; from django.test import Client; "
            f"password = make_password({PASSWORD!r}); "
            "people = User.objects.bulk_create(User(username=f'person{n}', password=password) "
            f"for n in range({self.people})); "
            "clients = [Client() for _ in people]; "
            "[client.force_login(person) for client, person in zip(clients, people)]; "
            "print(*(client.cookies['sessionid'].value for client in clients))"
        )
        self.sessions = sessions.split()
        port = self.base.rsplit(":", 1)[1]
        commands = {
            "web": [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                    "--bind", f"127.0.0.1:{port}"],
            "reaper": [sys.executable, "manage.py", "reap", "--every", "30"],
        }  # fmt: skip
        commands.update(worker_commands(int(self.env["WORKER_PROCESSES"])))
        self.log = open(self.var / "app.log", "w")  # noqa: SIM115 - closed in __exit__
        for command in commands.values():
            self.processes.append(
                subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=self.env,
                    stdout=self.log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )  # fmt: skip
            )
        wait_for(f"{self.base}/health/")
        return self

    def __exit__(self, *exc) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):  # already ended
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.log.close()
        if exc[0] is not None:
            print((self.var / "app.log").read_text()[-3000:], file=sys.stderr)
        shutil.rmtree(self.var, ignore_errors=True)

    @property
    def web_worker_pid(self) -> int:
        """The one gunicorn worker process (web_processes=1) under the gunicorn master."""
        master = self.processes[0].pid
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {children}")
        return int(children[0])

    def browser(self, person: int = 0) -> httpx.Client:
        """A client logged in as person{person}, sending the CSRF token as the pages' forms
        and htmx do."""
        client = httpx.Client(base_url=self.base, follow_redirects=True, timeout=120)
        client.cookies.set("sessionid", self.sessions[person])
        page = client.get("/edits/new/")
        if "/login/" in str(page.url):
            raise RuntimeError(f"person{person}'s session does not work")
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
        return client
