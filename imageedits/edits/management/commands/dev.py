"""`manage.py dev` (what `make run` runs): migrate, make the demo user, then run the web server,
the task worker, the reaper and, unless OPENAI_BASE_URL points elsewhere, the upstream
simulator, all in the foreground. Ctrl-C stops them all."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

DEMO_USERNAME = "demo"


def worker_commands() -> dict[str, list[str]]:
    """WORKER_PROCESSES workers for the configured tasks backend. RQ's pool runs them under one
    parent, each with django-tasks-rq's job class and RQ's scheduler (for the tasks deferred
    with `run_after`: retries, late-callback checks); django-tasks-db's are separate
    processes."""
    count = settings.WORKER_PROCESSES
    if settings.TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend":
        pool = ["rqworker-pool", "--job-class", "django_tasks_rq.Job", "--num-workers", str(count)]
        return {"workers": [sys.executable, "manage.py", *pool]}
    db_worker = [sys.executable, "manage.py", "db_worker", "--interval", "0.5"]
    return {f"worker {number}": db_worker for number in range(1, count + 1)}


class Command(BaseCommand):
    help = "Run web, worker, reaper and simulator for development (Ctrl-C stops all)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))

    def handle(self, *args, port: int, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("`dev` is for development; run the processes yourself when DEBUG=0.")
        call_command("migrate", verbosity=0)
        password = os.environ.get("DEMO_PASSWORD", "edit-some-images")
        self._ensure_demo_user(password)

        base_url = f"http://127.0.0.1:{port}"
        env = os.environ.copy()
        commands = {}
        if not os.environ.get("OPENAI_BASE_URL"):
            simulator = urlsplit(settings.SIMULATOR_URL)
            env.setdefault("PUBLIC_BASE_URL", base_url)
            commands["simulator"] = [
                sys.executable, "-m", "imageedits.simulator",
                "--host", simulator.hostname, "--port", str(simulator.port),
                "--latency", os.environ.get("SIMULATOR_LATENCY", "4"),
            ]  # fmt: skip
        commands.update(worker_commands())
        commands["reaper"] = [sys.executable, "manage.py", "reap", "--every", "30"]
        commands["web"] = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]

        # Each child leads its own process group, so stopping it also stops what it started
        # (runserver's and db_worker's autoreloaders run the real server in a grandchild).
        processes = {
            name: subprocess.Popen(command, env=env, cwd=settings.BASE_DIR, start_new_session=True)
            for name, command in commands.items()
        }
        upstream = "the simulator" if "simulator" in commands else settings.OPENAI_BASE_URL
        self.stdout.write(
            self.style.SUCCESS(f"\n  imageedits is running at {base_url}/\n")
            + f"  Log in as {DEMO_USERNAME} / {password}\n"
            + f"  Edits go to {upstream}"
            + (" (callbacks on)" if env.get("PUBLIC_BASE_URL") else " (no callbacks)")
            + f"\n  {settings.WORKER_PROCESSES} worker processes"
            + "\n  Ctrl-C stops web, workers, reaper and simulator.\n"
        )
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while all(process.poll() is None for process in processes.values()):
                time.sleep(0.5)
            stopped = [name for name, process in processes.items() if process.poll() is not None]
            raise CommandError(f"{', '.join(stopped)} stopped; stopping the rest.")
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(processes.values())

    def _stop(self, processes) -> None:
        for process in processes:
            self._signal_group(process, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._signal_group(process, signal.SIGKILL)

    @staticmethod
    def _signal_group(process: subprocess.Popen, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)

    def _ensure_demo_user(self, password: str) -> None:
        user, created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        if created or not user.check_password(password):
            user.set_password(password)
            user.save()
