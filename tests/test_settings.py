"""Production settings: with DEBUG=0 the deployment checks pass, with nothing silenced."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_deploy_checks_pass_in_production(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECURE_"))}
    env.update(DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), VAR_DIR=str(tmp_path))
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "no issues (0 silenced)" in checked.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DEBUG="0", VAR_DIR=str(tmp_path))
    env.pop("SECRET_KEY", None)
    checked = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert checked.returncode != 0
    assert "Set SECRET_KEY when DEBUG is off." in checked.stderr


def run_manage(*arguments: str, **environment: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_an_rq_job_timeout_shorter_than_one_upstream_wait_is_refused_at_start_up(tmp_path):
    """RQ's own default (180 s) would kill every try of a slow edit (UPSTREAM_TIMEOUT 200 s)."""
    rq = {"TASKS_BACKEND": "django_tasks_rq.RQBackend", "VAR_DIR": str(tmp_path)}
    worker = run_manage("rqworker", "--burst", TASK_TIMEOUT="180", **rq)
    assert worker.returncode != 0
    assert "(imageedits.E001) RQ queue 'default' kills jobs after 180 s" in worker.stderr
    assert "may take 380 s" in worker.stderr and "Set TASK_TIMEOUT above 380" in worker.stderr

    longer_waits = run_manage("check", TASK_TIMEOUT="600", UPSTREAM_TIMEOUT="500", **rq)
    assert "imageedits.E001" in longer_waits.stderr

    assert run_manage("check", **rq).returncode == 0  # the default outlasts the longest step
