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
