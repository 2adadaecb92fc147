"""The Procfile, compose.yaml and Dockerfile run the commands `make serve` runs: each process
they start is a command this project has, and gunicorn's configuration loads. (No image
registry is reachable here, so the image itself is not built in the suite.)"""

import pkgutil
import shlex
import subprocess
import sys
from pathlib import Path

import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent


def commands_in(command: list[str]) -> str:
    """What a process line runs: a manage.py command's name, or the program."""
    words = [word for word in command if not word.startswith("$")]
    return words[2] if words[:2] == ["python", "manage.py"] else words[0]


def procfile() -> dict[str, list[str]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name: shlex.split(line) for name, _, line in (row.partition(": ") for row in lines)}


def compose_commands() -> dict[str, list[str]]:
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return {
        name: shlex.split(service["command"])
        for name, service in services.items()
        if service.get("build") and "command" in service
    }


def test_every_process_is_a_command_this_project_has():
    import django_rq.management.commands as rq_commands  # installed with the RQ backend

    rq = {module.name for module in pkgutil.iter_modules(rq_commands.__path__)}
    known = set(get_commands()) | rq | {"gunicorn"}
    for name, command in {**procfile(), **compose_commands()}.items():
        assert commands_in(command) in known, (name, command)
    assert procfile()["web"] == ["gunicorn", "-c", "gunicorn.conf.py"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py"]' in dockerfile
    assert "USER app" in dockerfile and "collectstatic" in dockerfile


def test_gunicorns_configuration_loads():
    checked = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "-c", "gunicorn.conf.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
