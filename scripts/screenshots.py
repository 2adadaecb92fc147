"""`make screenshots`: every main page at 1280 px and 390 px wide, light and dark, as PNGs in
docs/screenshots/ (named page-width-theme.png).

The app runs as `make serve` runs it (bench/common.py's App) against the offline simulator: a
few edits are made through the form, one fails (the simulator refuses it), one is still running
(the simulator stalls it), then Chromium visits each page logged in.
"""

import io
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Settings for this process too (the App asks them which task workers to start).
os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="imageedits-screenshots-")
os.environ.pop("DATABASE_URL", None)
os.environ["TASKS_BACKEND"] = "django_tasks_db.DatabaseBackend"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "imageedits.settings")

import django  # noqa: E402

django.setup()

from playwright.sync_api import sync_playwright  # noqa: E402

from bench.common import PASSWORD, App  # noqa: E402
from imageedits.simulator import SimulatorServer, pixels  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
TOKEN = "sk-screenshots"
WIDTHS = {"wide": (1280, 800), "phone": (390, 844)}
THEMES = ("light", "dark")
IMAGES_IN_VIEW_LOADED = """() => [...document.images]
    .filter(image => image.getBoundingClientRect().top < innerHeight && !image.hidden)
    .every(image => image.complete)"""
PROMPTS = ["make it sepia", "add a warm golden frame", "mirror it", "dark mode, keep the layout"]


def sample_picture(name: str = "landscape") -> bytes:
    """One of the simulator's samples: a picture that shows each edit (and stays small as PNG)."""
    buffer = io.BytesIO()
    pixels.make_sample(name).save(buffer, format="PNG")
    return buffer.getvalue()


def submit(browser, prompt: str, image: bytes, candidates: int = 1) -> int:
    answer = browser.post(
        "/edits/new/",
        data={"prompt": prompt, "model": "gpt-image-2", "size": "1024x1024",
              "candidates": str(candidates)},
        files={"images": ("photo.png", image, "image/png")},
    )  # fmt: skip
    answer.raise_for_status()
    return int(re.search(r"/edits/(\d+)/$", str(answer.url))[1])


def wait_until_ended(browser, path: str) -> None:
    """Poll a status URL (an edit's, a batch's, a comparison's) until it says it has ended."""
    deadline = time.monotonic() + 120
    while browser.get(f"{path}status/").status_code != 286:
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} did not end")
        time.sleep(0.3)


def make_batch_and_comparison(browser) -> tuple[str, str]:
    """A batch of three pictures and a comparison of three models, both ended."""
    files = [("images", (f"{name}.png", sample_picture(name), "image/png"))
             for name in ("landscape", "portrait", "square")]  # fmt: skip
    answer = browser.post(
        "/batches/new/",
        data={"prompt": "make it look like a watercolour", "model": "gpt-image-2",
              "size": "auto", "candidates": "1"},
        files=files,
    )  # fmt: skip
    batch = re.search(r"/batches/\d+/$", str(answer.url))[0]
    answer = browser.post(
        "/compare/new/",
        data={"prompt": "make it look like a watercolour",
              "models": ["gpt-image-2", "gpt-image-1.5", "nano-banana-pro"]},
        files={"image": ("square.png", sample_picture("square"), "image/png")},
    )  # fmt: skip
    comparison = re.search(r"/compare/\d+/$", str(answer.url))[0]
    for path in (batch, comparison):
        wait_until_ended(browser, path)
    return batch, comparison


def make_history(app, simulator) -> dict[str, str]:
    """The edits the pages show; the paths of the pages to take."""
    browser = app.browser(0)
    image = sample_picture()
    done = [submit(browser, prompt, image, candidates=2 if n == 0 else 1)
            for n, prompt in enumerate(PROMPTS)]  # fmt: skip
    for edit_id in done:
        wait_until_ended(browser, f"/edits/{edit_id}/")
    simulator.inject("forbidden")
    failed = submit(browser, "make it look like a famous painting", image)
    wait_until_ended(browser, f"/edits/{failed}/")
    answer = browser.post(f"/edits/{done[0]}/share/", data={"include_inputs": "on"})
    token = re.search(r"/s/([^/\"<\s]+)/", answer.text)[1]
    # A team with an invitation waiting, two edits shared with it and a comment on one.
    team = browser.post("/teams/", data={"name": "Design"})
    team_path = re.search(r"/teams/\d+/$", str(team.url))[0]
    browser.post(f"{team_path}invite/", data={"who": "person1"}).raise_for_status()
    for edit_id in done[:2]:
        browser.post(f"/edits/{edit_id}/team/").raise_for_status()
    browser.post(f"/edits/{done[0]}/comments/", data={"text": "Warmer than the brief asked."})
    batch, comparison = make_batch_and_comparison(browser)
    simulator.config.latency = 600  # the next edit stays under way while it is photographed
    running = submit(browser, "turn the sky into a sunset", image)
    browser.close()
    return {
        "history": "/edits/",
        "edit": f"/edits/{done[0]}/",
        "running": f"/edits/{running}/",
        "shared": f"/s/{token}/",
        "team": team_path,
        "team-feed": f"{team_path}feed/",
        "usage": "/usage/",
        "batch": batch,
        "compare": comparison,
    }


def shoot(chromium, app, pages: dict[str, str], size: str, theme: str, sample: Path) -> None:
    """Every page at one size in one theme, logged in as the person who made the edits."""
    width, height = WIDTHS[size]
    context = chromium.new_context(
        base_url=app.base, viewport={"width": width, "height": height},
        color_scheme=theme, device_scale_factor=1,
    )  # fmt: skip
    page = context.new_page()

    def save(name: str) -> None:
        # Not "networkidle": a running edit's page polls its status twice a second.
        page.wait_for_load_state("load")
        page.wait_for_function(IMAGES_IN_VIEW_LOADED)
        page.wait_for_timeout(200)  # htmx's first swaps and the mask painter's first frame
        page.screenshot(path=OUT / f"{name}-{size}-{theme}.png")

    page.goto("/login/")
    save("login")
    page.get_by_label("Username").fill("person0")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/edits/new/"))
    save("new-edit")
    page.get_by_label("Images", exact=True).set_input_files(sample)
    page.get_by_label("Instruction").fill("replace the background with a beach")
    page.get_by_label("Mask painter: paint where the image should change").wait_for()
    save("new-edit-image")
    for name, path in pages.items():
        page.goto(path)
        if name in ("edit", "shared"):
            page.get_by_role("img", name="Edited image 1").first.wait_for()
        save(name)
    context.close()


def main() -> None:
    simulator = SimulatorServer(port=0, token=TOKEN, latency=0)
    simulator.start()
    try:
        with App(f"{simulator.url}/openai", TOKEN, callbacks=False) as app:
            pages = make_history(app, simulator)
            with sync_playwright() as playwright:
                chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium")
                OUT.mkdir(parents=True, exist_ok=True)
                sample = OUT.parent / "sample.png"
                sample.write_bytes(sample_picture())
                for size in WIDTHS:
                    for theme in THEMES:
                        shoot(chromium, app, pages, size, theme, sample)
                sample.unlink()
                chromium.close()
    finally:
        simulator.stop()
    print(f"Screenshots in {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
