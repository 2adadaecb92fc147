"""The processes of a running imageedits, shared by `manage.py dev` (`make run`) and
`manage.py serve` (`make serve`): simulator (unless OPENAI_BASE_URL is set), task workers,
reaper and a web server, supervised in the foreground until Ctrl-C or one of them stops."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import CommandError

# RQ's pool: django-tasks-rq's job class, and workers that run jobs in their own process
# (rqworker.Worker; make scale-test: 28 s against 83 s with RQ's forking default).
RQ_POOL = [
    "rqworker-pool", "--job-class", "django_tasks_rq.Job",
    "--worker-class", "imageedits.edits.rqworker.Worker",
]  # fmt: skip


def worker_commands(count: int | None = None) -> dict[str, list[str]]:
    """`count` (by default WORKER_PROCESSES) workers for the configured tasks backend. RQ's
    pool runs them under one parent, each also running RQ's scheduler (for the tasks deferred
    with `run_after`: retries, late-callback checks); django-tasks-db's are separate processes."""
    count = settings.WORKER_PROCESSES if count is None else count
    if settings.TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend":
        return {"workers": [sys.executable, "manage.py", *RQ_POOL, "--num-workers", str(count)]}
    # An idle worker looks for tasks ten times a second (one short query each): a queued step
    # waits 0.05 s on average.
    db_worker = [sys.executable, "manage.py", "db_worker", "--interval", "0.1"]
    return {f"worker {number}": db_worker for number in range(1, count + 1)}


def background_commands(env: dict[str, str], base_url: str) -> dict[str, list[str]]:
    """Everything but the web server; sets PUBLIC_BASE_URL in `env` for the simulator's
    callbacks."""
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
    return commands


def supervise(commands: dict[str, list[str]], env: dict[str, str], banner: str, out) -> None:
    """Start every command, print the banner, and stop them all on Ctrl-C or once one stops.

    Each child leads its own process group, so stopping it also stops what it started
    (autoreloaders, gunicorn's and RQ's workers)."""
    processes = {
        name: subprocess.Popen(command, env=env, cwd=settings.BASE_DIR, start_new_session=True)
        for name, command in commands.items()
    }
    out.write(banner)
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
        for process in processes.values():
            _signal_group(process, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
