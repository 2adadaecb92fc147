"""Production settings: with DEBUG=0 the deployment checks pass, with nothing silenced."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

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


POOL_SCRIPT = """
import threading
import django
django.setup()
from django.db import connection, connections
connection.ensure_connection()
pool = connection.pool
print("POOL", type(pool).__name__, pool.max_size)

def query():
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
    connections.close_all()  # back to the pool, not closed

threads = [threading.Thread(target=query) for _ in range(6)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
stats = pool.get_stats()
print("OPENED", stats.get("connections_num", 0), "AVAILABLE", stats["pool_available"])
"""


def test_db_pool_size_turns_on_psycopgs_pool_on_postgresql(tmp_path):
    """DB_POOL_SIZE=N: each process keeps at most N connections, reused by its threads."""
    import psycopg

    url = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    try:
        psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=2).close()
    except psycopg.OperationalError:
        pytest.skip(f"PostgreSQL is not running at {url}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DATABASE_URL=url, DB_POOL_SIZE="3", VAR_DIR=str(tmp_path),
               DJANGO_SETTINGS_MODULE="imageedits.settings")  # fmt: skip
    run = subprocess.run(
        [sys.executable, "-c", POOL_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "POOL ConnectionPool 3" in run.stdout
    opened = int(run.stdout.split("OPENED ")[1].split()[0])
    assert 1 <= opened <= 3  # six threads, never more than three connections
