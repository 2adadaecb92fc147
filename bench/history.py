"""Figure 3: the history page of someone with 10,000 edits against the same page of someone
with 10: time to answer and database queries, through Django's handler in this process. Every
edit has a result, as a real history's do, and the queries are counted after a first request
(which fills the session and user caches, as any earlier page would)."""

import statistics
import time

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.common import QUICK, RUNS, Row
from imageedits.edits.models import Edit, ResultImage, Submission

MANY = 1_000 if QUICK else 10_000
FEW = 10
REQUESTS = 5 if QUICK else 20


def history_of(username: str, count: int):
    owner = get_user_model().objects.create_user(username)
    now = timezone.now()
    edits = Edit.objects.bulk_create(
        Edit(owner=owner, prompt=f"make it sepia, take {n}", model="gpt-image-2",
             status=Edit.Status.SUCCEEDED, created_at=now - timezone.timedelta(minutes=n),
             started_at=now, finished_at=now)
        for n in range(count)
    )  # fmt: skip
    submissions = Submission.objects.bulk_create(
        Submission(edit=edit, index=0, status=Submission.Status.SUCCEEDED) for edit in edits
    )
    ResultImage.objects.bulk_create(
        ResultImage(submission=submission, edit=submission.edit, position=0,
                    file=f"results/{submission.pk}.png", thumbnail=f"thumbs/{submission.pk}.png",
                    width=1024, height=1024)
        for submission in submissions
    )  # fmt: skip
    client = Client(HTTP_HOST="localhost")
    client.force_login(owner)
    return client


def page_time(client: Client) -> float:
    started = time.perf_counter()
    answer = client.get("/edits/")
    took = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"the history page answered {answer.status_code}")
    return took


def queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as captured:
        client.get("/edits/")
    return len(captured)


def measure() -> list[Row]:
    few, many = history_of("ten-edits", FEW), history_of("many-edits", MANY)
    for _ in range(REQUESTS):  # warm up: caches, templates
        page_time(few), page_time(many)
    # One request of each in turn, so that whatever else the machine does weighs on both alike.
    timings = [(page_time(few), page_time(many)) for _ in range(REQUESTS * RUNS)]
    few_time = statistics.median(few_time for few_time, _ in timings)
    many_time = statistics.median(many_time for _, many_time in timings)
    few_queries, many_queries = queries(few), queries(many)
    return [
        Row(
            f"History page at {MANY:,} edits, time",
            f"{many_time * 1000:.1f} ms",
            f"{few_time * 1000:.1f} ms at {FEW} edits",
            many_time / few_time,
            "≤ 1.50x",
            many_time / few_time <= 1.5,
        ),
        Row(
            f"History page at {MANY:,} edits, database queries",
            str(many_queries),
            f"{few_queries} at {FEW} edits",
            None,
            "equal",
            many_queries == few_queries,
        ),
    ]
