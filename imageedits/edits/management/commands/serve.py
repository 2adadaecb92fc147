"""`manage.py serve` (what `make serve` runs): the production topology on one machine, with
DEBUG off: migrate, collect static files, then gunicorn (gunicorn.conf.py), the task workers,
the reaper and, unless OPENAI_BASE_URL points elsewhere, the simulator. Ctrl-C stops them all."""

import os
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from imageedits.edits.management.topology import background_commands, supervise


class Command(BaseCommand):
    help = "Run the production setup locally: gunicorn, workers, reaper (Ctrl-C stops all)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))

    def handle(self, *args, port: int, **options) -> None:
        if settings.DEBUG:
            raise CommandError("`serve` runs with DEBUG=0; `make serve` sets it.")
        call_command("migrate", verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        base_url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PORT": str(port)}
        commands = background_commands(env, base_url)
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
        commands["web"] = [*gunicorn, "--bind", f"127.0.0.1:{port}"]
        banner = (
            self.style.SUCCESS(f"\n  imageedits (production setup) is running at {base_url}/\n")
            + "  gunicorn, "
            + f"{settings.WORKER_PROCESSES} worker processes, the reaper"
            + (", the simulator" if "simulator" in commands else "")
            + "\n  Ctrl-C stops them all.\n"
        )
        supervise(commands, env, banner, self.stdout)
