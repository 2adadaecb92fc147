"""For load balancers and orchestrators: /health/ says the process answers (nothing else is
touched), /ready/ says it can serve: database, cache, stored files and the task queue."""

import dataclasses

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


def alive(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@dataclasses.dataclass
class TaskQueue(HealthCheck):
    """The configured tasks backend answers: Redis for RQ, the task table for django-tasks-db."""

    def run(self) -> None:
        try:
            if settings.TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend":
                import django_rq

                django_rq.get_connection("default").ping()
            else:
                from django_tasks_db.models import DBTaskResult

                DBTaskResult.objects.exists()
        except Exception as error:
            raise ServiceUnavailable("The task queue does not answer.") from error


ready = HealthCheckView.as_view(
    checks=[
        "health_check.checks.Database",
        "health_check.checks.Cache",
        "health_check.checks.Storage",
        TaskQueue,
    ]
)
