"""Figure 4: memory of the web process while one edit of 16 images of 8 MB each is uploaded.

The gunicorn worker's resident set is read when idle (after a warm-up edit), then its peak
while the edit's form is posted, checked and stored: the peak above idle is the figure. The
peak is the kernel's own high-water mark (VmHWM), reset before each upload where /proc allows
it; VmRSS is also sampled every 2 ms, which is all there is where it does not.
"""

import io
import os
import re
import statistics
import threading
from pathlib import Path

from PIL import Image

from bench.common import QUICK, RUNS, App, Row, photo
from imageedits.simulator import SimulatorServer

TOKEN = "sk-bench"
# gpt-image-2 takes 16 inputs (catalog.ImageModel.max_inputs). 16 x 8 MB of noise is 45
# megapixels and 128 MB: within the edit's pixel budget (100) and request cap (200 MB).
IMAGES, MEGABYTES = (4, 2) if QUICK else (16, 8)
TARGET_MB = 64
MB = 1024 * 1024


def noise_png(megabytes: float) -> bytes:
    """A PNG of random pixels, which do not compress: it weighs what its pixels do."""
    side = int((megabytes * MB / 3) ** 0.5)
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=0)  # noise would not shrink anyway
    return buffer.getvalue()


def kilobytes(pid: int, field: str) -> int:
    """A figure of /proc/PID/status, e.g. VmRSS, in kB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)[1])


def peak_during(pid: int, action) -> int:
    """Run `action` and return the peak resident set of process `pid` meanwhile, in kB."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        high_water = True
    except OSError:
        high_water = False
    samples = [kilobytes(pid, "VmRSS")]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            samples.append(kilobytes(pid, "VmRSS"))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        action()
    finally:
        done.set()
        sampler.join()
    return max(max(samples), kilobytes(pid, "VmHWM") if high_water else 0)


def submit(browser, files: list[bytes]) -> str:
    """Post one edit of `files`; the edit page's URL, checked to show every input."""
    answer = browser.post(
        "/edits/new/",
        data={"prompt": "make it sepia", "model": "gpt-image-2", "size": "1024x1024"},
        files=[("images", (f"photo{n}.png", data, "image/png")) for n, data in enumerate(files)],
    )
    answer.raise_for_status()
    shown = len(re.findall(r'alt="Input image \d+"', answer.text))
    if not re.search(r"/edits/\d+/$", str(answer.url)) or shown != len(files):
        raise RuntimeError(f"the edit was refused ({answer.url}, {shown} inputs):\n"
                           f"{answer.text[:3000]}")  # fmt: skip
    return str(answer.url)


def one_run(upstream_url: str, files: list[bytes]) -> tuple[float, float]:
    """(idle, peak above idle) of the web process, in MB, in an app of its own: memory that a
    process once held it may keep, so a second upload would start from a higher idle."""
    # One task worker and no callback: the edit runs after the upload, in other processes.
    with App(upstream_url, TOKEN, callbacks=False, workers=1) as app:
        browser = app.browser()
        browser.get("/edits/new/").raise_for_status()
        submit(browser, [photo(256, 256)])  # warm up: imports, templates, connections
        pid = app.web_worker_pid
        idle = kilobytes(pid, "VmRSS")
        peak = peak_during(pid, lambda: submit(browser, files))
        browser.close()
    return idle / 1024, (peak - idle) / 1024


def measure() -> list[Row]:
    files = [noise_png(MEGABYTES) for _ in range(IMAGES)]
    simulator = SimulatorServer(port=0, token=TOKEN, latency=0)
    simulator.start()
    try:
        runs = [one_run(f"{simulator.url}/openai", files) for _ in range(RUNS)]
    finally:
        simulator.stop()
    idle = statistics.median(idle for idle, _ in runs)
    growth = statistics.median(growth for _, growth in runs)
    return [
        Row(
            f"Web process memory, one edit of {IMAGES} uploads of {MEGABYTES} MB (gpt-image-2)",
            f"{growth:.1f} MB above idle",
            f"{idle:.1f} MB idle",
            None,
            f"< {TARGET_MB} MB above idle",
            growth < TARGET_MB,
        )
    ]
