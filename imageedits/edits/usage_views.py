"""The usage pages: what a person, or a team they belong to, spent in a month, and its CSV."""

import csv
from functools import partial

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from . import usage
from .models import Team

MONTH_PROBLEM = "Choose a month as YYYY-MM, for example 2026-12."


def _get_team_for_member(request: HttpRequest, team_id: int) -> Team:
    """A team the person belongs to; any other is a 404."""
    return get_object_or_404(Team, pk=team_id, members=request.user)


def _month(request: HttpRequest) -> usage.Month | None:
    text = request.GET.get("month", "").strip()
    return usage.Month.parse(text) if text else usage.Month.current()


def _page(
    request: HttpRequest, edits_for, title: str, csv_url: str, budgets: list, team=None
) -> HttpResponse:
    month = _month(request)
    problem = MONTH_PROBLEM if month is None else None
    month = month or usage.Month.current()
    context = {
        "title": title,
        "team": team,
        "report": usage.report(edits_for(month), month),
        "month_problem": problem,
        "csv_url": f"{csv_url}?month={month.value}",
        "budgets": budgets,
        "teams": request.user.teams.order_by("name"),
    }
    return render(request, "edits/usage.html", context, status=400 if problem else 200)


def _csv(request: HttpRequest, edits_for, name: str) -> HttpResponse:
    month = _month(request)
    if month is None:
        return HttpResponse(MONTH_PROBLEM, status=400, content_type="text/plain")
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{month.value}.csv"'
    writer = csv.writer(response)
    writer.writerow(usage.CSV_HEADER)
    writer.writerows(usage.csv_rows(edits_for(month)))
    return response


@login_required
@require_GET
def person(request: HttpRequest) -> HttpResponse:
    edits_for = partial(usage.person_edits, request.user)
    budgets = usage.budgets_left(request.user)
    return _page(request, edits_for, "Your usage", reverse("usage-csv"), budgets)


@login_required
@require_GET
def team(request: HttpRequest, team_id: int) -> HttpResponse:
    team = _get_team_for_member(request, team_id)
    edits_for = partial(usage.team_edits, team)
    csv_url = reverse("usage-team-csv", args=[team.pk])
    budgets = [budget for budget in [usage.team_budget_left(team)] if budget]
    return _page(request, edits_for, f"Team {team.name}: usage", csv_url, budgets, team)


@login_required
@require_GET
def person_csv(request: HttpRequest) -> HttpResponse:
    return _csv(request, partial(usage.person_edits, request.user), "usage")


@login_required
@require_GET
def team_csv(request: HttpRequest, team_id: int) -> HttpResponse:
    team = _get_team_for_member(request, team_id)
    return _csv(request, partial(usage.team_edits, team), f"usage-team-{team.pk}")
