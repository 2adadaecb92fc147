"""`manage.py reap`: recover edits that a killed worker or a lost task left behind (see
housekeeping.py). Run it every minute from cron, or keep it running with --every."""

import logging
import time
from datetime import timedelta

from django.core.management.base import BaseCommand

from imageedits.edits import housekeeping

# A file younger than this may belong to an edit whose transaction is still open.
ORPHAN_AGE = timedelta(hours=1)


class Command(BaseCommand):
    help = "Recover edits left behind by killed workers or lost tasks."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--every", type=float, default=0, help="Run again every this many seconds."
        )
        parser.add_argument(
            "--sweep-every",
            type=float,
            default=3600,
            help="With --every: also delete orphaned files and old task rows this often (seconds).",
        )

    def handle(self, *args, every: float, sweep_every: float, **options) -> None:
        last_sweep = 0.0
        while True:
            try:
                counts = housekeeping.reap()
                if time.monotonic() - last_sweep >= sweep_every:
                    counts["orphans_deleted"] = housekeeping.sweep_orphans(ORPHAN_AGE)
                    counts.update(housekeeping.tidy_task_rows())
                    last_sweep = time.monotonic()
            except Exception:
                if not every:
                    raise
                # A passing fault (a locked database, say) must not stop the loop for good.
                logging.getLogger(__name__).exception("Reaping failed; trying again later")
            else:
                if any(counts.values()) or options["verbosity"] > 1:
                    self.stdout.write(", ".join(f"{key}: {value}" for key, value in counts.items()))
            if not every:
                return
            time.sleep(every)
