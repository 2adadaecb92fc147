"""Figure 1: time to result as a person sees it, against calling the API directly.

Through the app: log in, submit the edit form, then do what the page's htmx does (poll the
status URL the page names, at the interval it names, swapping in each new fragment) until the
result's image is in the page, and load that image. Directly: one POST to the upstream and the
download of its result. Both against the same simulator, which takes LATENCY seconds an edit,
with K edits at once (K people, one edit each), with the upstream calling back and without.
"""

import base64
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.common import QUICK, RUNS, App, Row, textured_photo
from imageedits.simulator import SimulatorServer

LATENCY = 1.0 if QUICK else 10.0
CONCURRENCY = (1, 4) if QUICK else (1, 32)
TOKEN = "sk-bench"
TARGET = 1.10


def direct_edit(simulator_url: str, image: bytes) -> float:
    """One edit straight from the API: the request, and the result's bytes."""
    started = time.monotonic()
    with httpx.Client(timeout=120) as client:
        answer = client.post(
            f"{simulator_url}/openai/images/edits",
            headers={"Authorization": f"Bearer {TOKEN}"},
            data={"model": "gpt-image-2", "prompt": "make it sepia", "size": "1024x1024"},
            files={"image[]": ("photo.jpg", image, "image/jpeg")},
        )
        answer.raise_for_status()
        item = answer.json()["data"][0]
        if item.get("url"):
            client.get(item["url"]).raise_for_status()
        else:
            base64.b64decode(item["b64_json"])
    return time.monotonic() - started


def app_edit(browser: httpx.Client, image: bytes) -> float:
    """One edit as the page runs it: submit, poll as htmx does, load the result image."""
    started = time.monotonic()
    page = browser.post(
        "/edits/new/",
        data={"prompt": "make it sepia", "model": "gpt-image-2", "size": "1024x1024"},
        files={"images": ("photo.jpg", image, "image/jpeg")},
    )
    page.raise_for_status()
    fragment = page.text
    while poll := re.search(
        r'hx-get="([^"]+/status/[^"]*)" hx-trigger="every ([\d.]+)(ms|s)"', fragment
    ):
        time.sleep(float(poll[2]) / (1000 if poll[3] == "ms" else 1))
        try:
            answer = browser.get(poll[1].replace("&amp;", "&"), headers={"HX-Request": "true"})
        except httpx.TransportError:
            continue  # as htmx does: a poll that failed is sent again at the next tick
        answer.raise_for_status()
        if answer.status_code != 204:  # 204: nothing changed, htmx leaves the page alone
            fragment = answer.text
    shown = re.search(r'<img src="([^"]+/(?:preview|result)/0/[^"]*)"', fragment)
    if shown is None:
        raise RuntimeError(f"the edit ended without a result:\n{fragment[:2000]}")
    browser.get(shown[1].replace("&amp;", "&")).raise_for_status()
    return time.monotonic() - started


def at_once(edit, count: int) -> float:
    """`count` edits started together: the median of their times."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return statistics.median(pool.map(edit, range(count)))


def measure() -> list[Row]:
    image = textured_photo(image_format="JPEG")  # a photograph, as phones take them
    simulator = SimulatorServer(port=0, token=TOKEN, latency=LATENCY)
    simulator.start()
    many = max(CONCURRENCY)
    # Without callbacks a worker waits on each request for the upstream's whole latency: K
    # edits at once need K workers (an operator's sizing rule). With callbacks, the 2 workers
    # of the default setup carry any number.
    setups = [(False, [1], 2), (False, [many], many), (True, CONCURRENCY, 2)]
    rows = []
    try:
        for callbacks, counts, workers in setups:
            with App(
                f"{simulator.url}/openai", TOKEN, callbacks=callbacks, people=many,
                workers=workers, web_processes=2,  # as make serve runs it
            ) as app:  # fmt: skip
                browsers = [app.browser(n) for n in range(max(counts))]
                app_edit(browsers[0], image)  # warm up the web and worker processes
                for count in counts:
                    baseline, measured = timings(simulator, browsers, image, count)
                    how = "callbacks" if callbacks else "no callbacks"
                    rows.append(
                        Row(
                            f"Time to result, {count} at once, {how}, {workers} workers "
                            f"(upstream {LATENCY:g} s)",
                            f"{measured:.2f} s",
                            f"{baseline:.2f} s direct API call",
                            measured / baseline,
                            f"≤ {TARGET:.2f}x",
                            measured / baseline <= TARGET,
                        )
                    )
                for browser in browsers:
                    browser.close()
    finally:
        simulator.stop()
    return rows


def timings(simulator, browsers, image: bytes, count: int) -> tuple[float, float]:
    """Medians over runs (fewer for many at once) of `count` direct calls and `count` edits
    through the app, each set started together."""
    direct, through_app = [], []
    for _ in range(RUNS if count == 1 else max(1, RUNS // 2)):
        direct.append(at_once(lambda _: direct_edit(simulator.url, image), count))
        through_app.append(at_once(lambda n: app_edit(browsers[n], image), count))
    return statistics.median(direct), statistics.median(through_app)
