"""Figure 6: what the main pages weigh in a browser, cold (nothing cached).

A history of EDITS succeeded edits, made through the app's form from photo-like 1024x1024
uploads (the simulator really edits them), then the history, one edit's page and the new-edit
page loaded logged in by Chromium, scrolled to the end so every lazy image loads. Every
response's body is counted as it came over the wire (compressed, as `sizes()` reports it) and
split into HTML, CSS, JS and images. The baseline is the same page with each image it shows
served at full size (the stored result or input), fetched in the same run. 1 MB is 10^6 bytes.
"""

import re
import time

import httpx
from playwright.sync_api import sync_playwright

from bench.common import PASSWORD, QUICK, App, Row, textured_photo
from imageedits.simulator import SimulatorServer

EDITS = 6 if QUICK else 48
TOKEN = "sk-bench"
PAGE_TARGET = 1_500_000
JS_TARGET = 80_000
# The prompts cycle so the results differ; none of them blurs away the detail.
PROMPTS = ["make it sepia", "brighten it", "mirror it", "add a warm frame", "dark mode"]
KINDS = {
    "document": "HTML",
    "stylesheet": "CSS",
    "script": "JS",
    "image": "images",
}
# What each image URL would be at full size (the names before and after previews existed).
FULL_SIZE = {"thumbnail": "result", "preview": "result", "input-preview": "input"}


def fill_history(browser: httpx.Client, count: int) -> list[int]:
    """`count` edits submitted through the form, each waited for until it succeeded."""
    image = textured_photo()
    ids = []
    for n in range(count):
        answer = browser.post(
            "/edits/new/",
            data={"prompt": PROMPTS[n % len(PROMPTS)], "model": "gpt-image-2",
                  "size": "1024x1024"},
            files={"images": ("photo.png", image, "image/png")},
        )  # fmt: skip
        answer.raise_for_status()
        ids.append(int(re.search(r"/edits/(\d+)/$", str(answer.url))[1]))
    for edit_id in ids:
        deadline = time.monotonic() + 120
        while (status := browser.get(f"/edits/{edit_id}/status/")).status_code != 286:
            if time.monotonic() > deadline:
                raise RuntimeError(f"edit {edit_id} did not end:\n{status.text[:2000]}")
            time.sleep(0.5)
        if "The edit failed" in status.text:
            raise RuntimeError(f"edit {edit_id} failed:\n{status.text[:2000]}")
    return ids


def load(context, url: str) -> list[tuple[str, str, int, int]]:
    """Every response of one page view: (kind, url, bytes transferred, bytes decoded)."""
    page = context.new_page()
    finished = []
    page.on("requestfinished", lambda request: finished.append(request))
    page.goto(url, wait_until="networkidle")
    # Scroll a screen at a time, as a reader would, so each lazy image starts loading.
    while page.evaluate("window.scrollY + window.innerHeight < document.body.scrollHeight"):
        page.mouse.wheel(0, 600)
        page.wait_for_timeout(100)
    page.wait_for_function("[...document.images].every(image => image.complete)")
    page.wait_for_load_state("networkidle")
    rows = []
    for request in finished:
        response = request.response()
        kind = KINDS.get(request.resource_type, "other")
        decoded = len(response.body()) if response.status == 200 else 0
        rows.append((kind, request.url, request.sizes()["responseBodySize"], decoded))
    page.close()
    return rows


def full_size(browser: httpx.Client, responses) -> int:
    """The page's bytes with each image it shows at full size instead."""
    total = 0
    for kind, url, transferred, _ in responses:
        shown = re.search(r"/edits/(\d+)/([\w-]+)/(\d+)/", url)
        if kind != "images" or not shown:
            total += transferred
            continue
        edit_id, image_kind, position = shown.groups()
        full = FULL_SIZE.get(image_kind, image_kind)
        total += len(browser.get(f"/edits/{edit_id}/{full}/{position}/").content)
    return total


def mb(count: int) -> str:
    return f"{count / 1_000_000:.2f} MB"


def kb(count: int) -> str:
    return f"{count / 1000:.0f} KB"


def rows_for(name: str, responses, baseline: int) -> list[Row]:
    by_kind = dict.fromkeys((*KINDS.values(), "other"), 0)
    for kind, _, transferred, _ in responses:
        by_kind[kind] += transferred
    total = sum(by_kind.values())
    split = ", ".join(f"{kind} {kb(size)}" for kind, size in by_kind.items() if size)
    scripts = [decoded for kind, _, _, decoded in responses if kind == "JS"]
    return [
        Row(
            f"Page weight, {name}",
            f"{mb(total)} in {len(responses)} requests ({split})",
            f"{mb(baseline)} with its images at full size",
            None,
            f"< {mb(PAGE_TARGET)}",
            total < PAGE_TARGET,
        ),
        Row(
            f"JavaScript, {name}",
            f"{kb(by_kind['JS'])} transferred in {len(scripts)} files",
            f"{kb(sum(scripts))} uncompressed",
            None,
            f"< {kb(JS_TARGET)}",
            by_kind["JS"] < JS_TARGET,
        ),
    ]


def measure() -> list[Row]:
    simulator = SimulatorServer(port=0, token=TOKEN, latency=0)
    simulator.start()
    rows = []
    try:
        with App(f"{simulator.url}/openai", TOKEN, callbacks=False) as app:
            browser = app.browser(0)
            ids = fill_history(browser, EDITS)
            pages = {
                f"history of {EDITS} edits": "/edits/",
                "one edit's page": f"/edits/{ids[-1]}/",
                "new edit": "/edits/new/",
            }
            with sync_playwright() as playwright:
                chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium")
                context = chromium.new_context(base_url=app.base)
                login = context.new_page()
                login.goto("/login/")
                login.get_by_label("Username").fill("person0")
                login.get_by_label("Password").fill(PASSWORD)
                login.get_by_role("button", name="Log in").click()
                login.wait_for_url(lambda url: "/login/" not in url)
                state = context.storage_state()
                context.close()
                for name, path in pages.items():
                    # A context of its own for each page: nothing cached from the one before.
                    context = chromium.new_context(base_url=app.base, storage_state=state)
                    responses = load(context, f"{app.base}{path}")
                    context.close()
                    rows += rows_for(name, responses, full_size(browser, responses))
                chromium.close()
            browser.close()
    finally:
        simulator.stop()
    return rows
