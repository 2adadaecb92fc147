"""`manage.py reap`: recover edits that a killed worker or a lost task left behind (see
services.reap). Run it every minute from cron, or keep it running with --every."""

import time

from django.core.management.base import BaseCommand

from imageedits.edits import services


class Command(BaseCommand):
    help = "Recover edits left behind by killed workers or lost tasks."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--every", type=float, default=0, help="Run again every this many seconds."
        )

    def handle(self, *args, every: float, **options) -> None:
        while True:
            counts = services.reap()
            if any(counts.values()) or options["verbosity"] > 1:
                self.stdout.write(", ".join(f"{key}: {value}" for key, value in counts.items()))
            if not every:
                return
            time.sleep(every)
