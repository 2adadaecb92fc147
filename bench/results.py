"""Figure 5: handling one result as the worker does (decode and check it, store it re-encoded,
make its thumbnail; `pipeline.finish`) against Pillow alone decoding and encoding the same
image: time, and the growth of the resident set (in a forked child, so each starts alike).
The result is a 3840x2160 PNG from the simulator, handed over in base64 as its answers are."""

import io
import os
import resource
import statistics
import time
import traceback

from django.contrib.auth import get_user_model
from django.db import connections
from PIL import Image

from bench.common import RUNS, Row, photo
from imageedits.edits import images, pipeline, services, upstream
from imageedits.simulator import SimulatorServer

TOKEN = "sk-bench"
TARGET = 1.5


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


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def measure() -> list[Row]:
    from django.conf import settings

    simulator = SimulatorServer(port=0, token=TOKEN)
    simulator.start()
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = f"{simulator.url}/openai", TOKEN
    settings.OPENAI_FLAVOUR, settings.PUBLIC_BASE_URL = "ace", ""
    source = photo(1024, 1024)
    answer = upstream.submit(
        upstream.EditRequest(
            "gpt-image-2", "sepia", "3840x2160",
            [upstream.InputFile("photo.png", source, "image/png")],
        )
    )  # fmt: skip
    result = upstream.result_bytes(answer.images[0])
    # Fork with no other threads alive: close the keep-alive connection (its handler thread
    # in the simulator) and the simulator. finish() needs no network for a base64 answer.
    upstream.client().close()
    simulator.stop()
    owner = get_user_model().objects.create_user("results")

    def running_request():
        edit = services.create_edit(
            owner,
            services.NewEdit("sepia", "gpt-image-2", "3840x2160", [images.reencode(source)], []),
        )  # its task is queued, and nothing runs it: the bench finishes its request itself
        edit.mark_running()
        submission = edit.submissions.get()
        submission.mark_running()
        return submission

    def pillow_alone() -> None:
        with Image.open(io.BytesIO(result)) as image:
            image.load()
            image.save(io.BytesIO(), format="PNG", **images.PNG_OPTIONS)  # as the app writes it

    def finish() -> float:
        submission = running_request()
        took = timed(lambda: pipeline.finish(submission, answer))
        if not submission.edit.results.exists():
            raise RuntimeError("finish() stored no result")
        return took

    # Memory first: a forked child starts with its parent's high-water mark, which the timed
    # runs below would raise.
    decode_peak = peak_rss_increase(lambda: images.decode(result))
    submission = running_request()
    finish_peak = peak_rss_increase(lambda: pipeline.finish(submission, answer))
    finish(), pillow_alone()  # warm up
    # In turns, so that whatever else the machine does weighs on both alike.
    timings = [(timed(pillow_alone), finish()) for _ in range(2 * RUNS)]
    baseline = statistics.median(pillow for pillow, _ in timings)
    handled = statistics.median(took for _, took in timings)
    mb = 1024 * 1024
    return [
        Row(
            "Handling a 3840x2160 result (decode, store, thumbnail), time",
            f"{handled * 1000:.0f} ms",
            f"{baseline * 1000:.0f} ms Pillow alone: decode + encode as stored",
            handled / baseline,
            f"≤ {TARGET:.2f}x",
            handled / baseline <= TARGET,
        ),
        Row(
            "Handling a 3840x2160 result, peak memory growth",
            f"{finish_peak / mb:.0f} MB",
            f"{decode_peak / mb:.0f} MB Pillow alone: decode once",
            finish_peak / decode_peak,
            f"≤ {TARGET:.2f}x",
            finish_peak / decode_peak <= TARGET,
        ),
    ]
