"""Figure 2: the status poll that every open edit page sends twice a second.

How many polls of a running edit whose progress has not changed one web process (gunicorn, as
`make serve` runs it) answers per second of its CPU, against a trivial view (/health/, through
the same middleware) measured the same way in the same process: 8 keep-alive clients ask for
a few seconds while the worker's CPU time is read from /proc, which leaves out the clients' own
work and whatever else the machine is doing. And the database queries of one poll, counted by
Django's test client against the same kind of edit.
"""

import http.client
import os
import re
import statistics
import threading
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.common import QUICK, RUNS, App, Row, photo
from imageedits.edits import images, services

SECONDS = 1.0 if QUICK else 3.0
CLIENTS = 8  # as many as the web process has threads


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def requests_per_cpu_second(base: str, pid: int, path: str, headers: dict) -> float:
    """CLIENTS keep-alive connections asking for `path` over and over for SECONDS: requests
    answered per second of the web process's CPU time."""
    host, port = base.removeprefix("http://").split(":")
    counts = [0] * CLIENTS
    deadline = time.monotonic() + SECONDS

    def client(number: int) -> None:
        connection = http.client.HTTPConnection(host, int(port))
        while time.monotonic() < deadline:
            connection.request("GET", path, headers=headers)
            answer = connection.getresponse()
            answer.read()
            if answer.status not in (200, 204):
                raise RuntimeError(f"{path} answered {answer.status}")
            counts[number] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    started = cpu_seconds(pid)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (cpu_seconds(pid) - started)


def polled_url(html: str) -> str:
    """The status URL an edit page polls, as htmx would ask for it."""
    return re.search(r'hx-get="([^"]+/status/[^"]*)"', html)[1].replace("&amp;", "&")


def running_edit(browser) -> str:
    """Submit an edit that stays running (the upstream is a closed port), and return the URL
    its page polls."""
    page = browser.post(
        "/edits/new/",
        data={"prompt": "make it sepia", "model": "gpt-image-2", "size": "1024x1024"},
        files={"images": ("photo.png", photo(256, 256), "image/png")},
    )
    page.raise_for_status()
    return polled_url(page.text)


def queries_per_poll() -> int:
    """The same poll through Django's test client in this process, its queries counted."""
    owner = get_user_model().objects.create_user("poller")
    edit = services.create_edit(
        owner,
        services.NewEdit("sepia", "gpt-image-2", "", [images.reencode(photo(64, 64))], []),
    )
    edit.mark_running()
    edit.submissions.get().mark_running()
    client = Client(HTTP_HOST="localhost")
    client.force_login(owner)
    page = client.get(edit.get_absolute_url())
    if page.status_code != 200:
        raise RuntimeError(f"the edit page answered {page.status_code}")
    page = page.content.decode()
    poll = polled_url(page)
    with CaptureQueriesContext(connection) as queries:
        answer = client.get(poll, headers={"HX-Request": "true"})
    if answer.status_code != 204:
        raise RuntimeError(f"the poll of an unchanged edit answered {answer.status_code}")
    return len(queries)


def measure() -> list[Row]:
    # Nothing listens on port 9: the edit's request waits its retries out, the edit stays running.
    with App("http://127.0.0.1:9/openai", "sk-bench", callbacks=False, workers=0) as app:
        browser = app.browser()
        poll = running_edit(browser)
        headers = {
            "Cookie": "; ".join(f"{name}={value}" for name, value in browser.cookies.items()),
            "HX-Request": "true",
        }
        if browser.get(poll, headers={"HX-Request": "true"}).status_code != 204:
            raise RuntimeError("the poll of an unchanged edit did not answer 204")
        pid = app.web_worker_pid
        requests_per_cpu_second(app.base, pid, poll, headers)  # warm up
        polls, trivial = [], []
        for _ in range(RUNS):
            trivial.append(requests_per_cpu_second(app.base, pid, "/health/", {}))
            polls.append(requests_per_cpu_second(app.base, pid, poll, headers))
        browser.close()
    poll_rate, trivial_rate = statistics.median(polls), statistics.median(trivial)
    queries = queries_per_poll()
    return [
        Row(
            "Status poll, requests per CPU-second of one web process",
            f"{poll_rate:.0f}",
            f"{trivial_rate:.0f} trivial view (/health/)",
            poll_rate / trivial_rate,
            "≥ 0.70x",
            poll_rate / trivial_rate >= 0.7,
        ),
        Row("Status poll, database queries", str(queries), "–", None, "≤ 2", queries <= 2),
    ]
