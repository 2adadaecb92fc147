"""`make bench`: what the app's pipeline costs on top of the upstream, as ratios against a
baseline measured in the same run (absolute numbers vary by machine; the ratios should not).

1. Time per edit: the full pipeline (store inputs, run, fetch, re-encode and store the result
   with its thumbnail) against the bare upstream request for the same edit, both against the
   simulator over a real socket with no simulated latency.
2. Peak memory (resident set, in a forked child so each starts alike) of finishing one
   3840x2160 result against decoding that result once.
"""

import os
import resource
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="imageedits-bench-")
os.environ.pop("DATABASE_URL", None)
os.environ["TASKS_BACKEND"] = "django_tasks_db.DatabaseBackend"  # the embedded default
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imageedits.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django_tasks_db.management.commands.db_worker import Worker  # noqa: E402

from imageedits.edits import images, pipeline, services, upstream  # noqa: E402
from imageedits.edits.models import Edit  # noqa: E402
from imageedits.simulator import SimulatorServer  # noqa: E402
from tests.conftest import make_png  # noqa: E402

EDITS = int(os.environ.get("BENCH_EDITS", 15))
TOKEN = "sk-bench"


def per_edit(run) -> float:
    timings = []
    for _ in range(EDITS):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def peak_rss_increase(run) -> int:
    """How far the resident set grows above where it started while `run` runs."""
    connections.close_all()  # the child opens its own database connection
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            page = os.sysconf("SC_PAGE_SIZE")
            with open("/proc/self/statm") as statm:
                before = int(statm.read().split()[1]) * page
            run()
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            os.write(write, str(peak - before).encode())
        except BaseException:
            traceback.print_exc()
            os._exit(1)  # never return into the parent's code
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("the measured step failed in the child process (traceback above)")
    return int(os.read(read, 64))


def main() -> None:
    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user("bench")
    simulator = SimulatorServer(port=0, token=TOKEN)
    simulator.start()
    settings.OPENAI_BASE_URL = f"{simulator.url}/openai"
    settings.OPENAI_API_KEY = TOKEN
    settings.PUBLIC_BASE_URL = ""
    photo = make_png(1024, 1024)
    request = upstream.EditRequest(
        "gpt-image-2", "make it grayscale", "1024x1024",
        [upstream.InputFile("photo.png", photo, "image/png")],
    )  # fmt: skip

    # django-tasks-db's own worker, in this process, until the queue is empty.
    worker = Worker(
        queue_names=["default"], interval=0, batch=True, backend_name="default",
        startup_delay=False, max_tasks=None, worker_id="bench", excluded_queue_names=[],
    )  # fmt: skip

    def bare_upstream() -> None:
        answer = upstream.submit(request)
        upstream.result_bytes(answer.images[0])

    def full_pipeline() -> None:
        new = services.NewEdit(
            "make it grayscale", "gpt-image-2", "1024x1024", [images.reencode(photo)], []
        )
        edit = services.create_edit(owner, new)  # queues start_edit on commit
        worker.run()  # start_edit, then run_submission, through the queue
        assert Edit.objects.get(pk=edit.pk).status == Edit.Status.SUCCEEDED

    bare_upstream(), full_pipeline()  # warm up connections and imports
    baseline = per_edit(bare_upstream)
    app = per_edit(full_pipeline)

    big = upstream.submit(
        upstream.EditRequest(
            "gpt-image-2", "sepia", "3840x2160", [upstream.InputFile("p.png", photo, "image/png")]
        )
    )
    result = upstream.result_bytes(big.images[0])
    # Fork with no other threads alive: close the keep-alive connection (its handler thread
    # in the simulator) and the simulator. finish() needs no network for a base64 answer.
    upstream.client().close()
    simulator.stop()
    decode_peak = peak_rss_increase(lambda: images.decode(result))
    edit = services.create_edit(
        owner, services.NewEdit("sepia", "gpt-image-2", "3840x2160", [images.reencode(photo)], [])
    )  # its task is queued, and nothing runs it: the bench finishes its request itself
    edit.mark_running()
    submission = edit.submissions.get()
    submission.mark_running()
    finish_peak = peak_rss_increase(lambda: pipeline.finish(submission, big))
    assert edit.results.count() == 1

    mb = 1024 * 1024
    print(f"Time per edit, median of {EDITS} (1024x1024 gpt-image-2 against the simulator)")
    print(f"  baseline  bare upstream request + result  {baseline * 1000:8.1f} ms")
    print(f"  app       full pipeline                   {app * 1000:8.1f} ms"
          f"   {app / baseline:5.2f}x baseline")  # fmt: skip
    print("Peak memory growth, one 3840x2160 result")
    print(f"  baseline  decode it once                  {decode_peak / mb:8.1f} MB")
    print(f"  app       finish(): decode, store, thumb  {finish_peak / mb:8.1f} MB"
          f"   {finish_peak / decode_peak:5.2f}x baseline")  # fmt: skip


if __name__ == "__main__":
    main()
