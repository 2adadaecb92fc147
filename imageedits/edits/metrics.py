"""Prometheus metrics at /metrics/, for whoever holds METRICS_TOKEN (404 without one).

Two kinds: request latency, measured in each web process (set PROMETHEUS_MULTIPROC_DIR under
gunicorn so that its processes add up), and figures read from the database when scraped, so
that what the task workers did counts without a metrics server in each of them: edits by
status and model, the work waiting, and the upstream's answers of the last 15 minutes.
"""

import hmac
import os
import statistics
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import resolve
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from .models import Edit, Submission

RECENT = timedelta(minutes=15)

REQUEST_SECONDS = Histogram(
    "imageedits_request_seconds",
    "Time to answer a web request, by view and status class.",
    ["view", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class RequestTimingMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None) or _resolve(request.path_info)
        view = match.url_name if match and match.url_name else "unknown"
        status = f"{response.status_code // 100}xx"
        REQUEST_SECONDS.labels(view, status).observe(time.perf_counter() - started)
        return response


def _resolve(path: str):
    try:
        return resolve(path)
    except Http404:
        return None


class DatabaseFigures:
    """Read at each scrape: cheap grouped counts over indexed columns."""

    def collect(self):
        edits = GaugeMetricFamily(
            "imageedits_edits", "Edits by status and model.", labels=["status", "model"]
        )
        for row in Edit.objects.values("status", "model").annotate(count=Count("id")):
            edits.add_metric([row["status"], row["model"]], row["count"])
        yield edits

        waiting = GaugeMetricFamily(
            "imageedits_requests_under_way",
            "Upstream requests queued or running.",
            labels=["status"],
        )
        active = Submission.objects.filter(status__in=Submission.ACTIVE)
        for row in active.values("status").annotate(count=Count("id")):
            waiting.add_metric([row["status"]], row["count"])
        yield waiting
        yield GaugeMetricFamily(
            "imageedits_queue_depth", "Tasks waiting in the queue.", value=_queue_depth()
        )

        since = timezone.now() - RECENT
        ended = Submission.objects.filter(finished_at__gte=since)
        outcomes = GaugeMetricFamily(
            "imageedits_upstream_requests_recent",
            "Upstream requests that ended in the last 15 minutes, by outcome and error code.",
            labels=["outcome", "code"],
        )
        for row in ended.values("status", "error_code").annotate(count=Count("id")):
            outcomes.add_metric([row["status"], row["error_code"]], row["count"])
        yield outcomes
        durations = [
            (finished - started).total_seconds()
            for started, finished in ended.filter(status=Submission.Status.SUCCEEDED)
            .exclude(started_at=None)
            .values_list("started_at", "finished_at")[:5000]
        ]
        latency = GaugeMetricFamily(
            "imageedits_upstream_seconds",
            "Seconds from sending a request to its stored result, last 15 minutes.",
            labels=["quantile"],
        )
        if durations:
            latency.add_metric(["0.5"], statistics.median(durations))
            # quantiles() wants two figures at least (before Python 3.13).
            cuts = statistics.quantiles(durations * 2, n=20, method="inclusive")
            latency.add_metric(["0.95"], cuts[18])
        yield latency


def _queue_depth() -> int:
    if settings.TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend":
        import django_rq

        queue = django_rq.get_queue("default")
        return queue.count + queue.scheduled_job_registry.count
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(status="READY").count()


def view(request: HttpRequest) -> HttpResponse:
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").encode()
    if not (settings.METRICS_TOKEN and hmac.compare_digest(given, settings.METRICS_TOKEN.encode())):
        raise Http404
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # every gunicorn process's request timings
    else:
        registry.register(_ThisProcess())
    registry.register(DatabaseFigures())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class _ThisProcess:
    def collect(self):
        yield from REQUEST_SECONDS.collect()
