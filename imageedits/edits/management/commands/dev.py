"""`manage.py dev` (what `make run` runs): migrate, make the demo user, then run the web server
(runserver), the task workers, the reaper and, unless OPENAI_BASE_URL points elsewhere, the
upstream simulator, all in the foreground. Ctrl-C stops them all."""

import os
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from imageedits.edits.management.topology import background_commands, supervise

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Run web, workers, reaper and simulator for development (Ctrl-C stops all)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))

    def handle(self, *args, port: int, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("`dev` is for development; `make serve` runs the production setup.")
        call_command("migrate", verbosity=0)
        password = os.environ.get("DEMO_PASSWORD", "edit-some-images")
        self._ensure_demo_user(password)

        base_url = f"http://127.0.0.1:{port}"
        env = os.environ.copy()
        commands = background_commands(env, base_url)
        commands["web"] = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"]
        upstream = "the simulator" if "simulator" in commands else settings.OPENAI_BASE_URL
        banner = (
            self.style.SUCCESS(f"\n  imageedits is running at {base_url}/\n")
            + f"  Log in as {DEMO_USERNAME} / {password}\n"
            + f"  Edits go to {upstream}"
            + (" (callbacks on)" if env.get("PUBLIC_BASE_URL") else " (no callbacks)")
            + f"\n  {settings.WORKER_PROCESSES} worker processes"
            + "\n  Ctrl-C stops web, workers, reaper and simulator.\n"
        )
        supervise(commands, env, banner, self.stdout)

    def _ensure_demo_user(self, password: str) -> None:
        user, created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        if created or not user.check_password(password):
            user.set_password(password)
            user.save()
