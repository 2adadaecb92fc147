"""What people and teams spend, a month at a time, and the monthly budgets that cap it.

An edit counts for the month it was submitted in. While it is under way it counts with its
requested credits (candidates x unit price); once it has ended, with its billed credits (the
results that came back x unit price, see Edit.billed_for). A team spends what its members
spend, on every edit of theirs, shared with the team or not.
"""

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import models
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from . import throttle
from .models import Edit, PersonBudget, Team

_CREDITS = models.DecimalField(max_digits=12, decimal_places=2)
ZERO = Decimal("0.00")
# Billed once ended, requested while under way; nothing where no price was known.
SPENT = Coalesce("billed_credits", "credits", models.Value(ZERO), output_field=_CREDITS)

_MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def current(cls) -> "Month":
        today = timezone.localdate()
        return cls(today.year, today.month)

    @classmethod
    def parse(cls, text: str) -> "Month | None":
        """The month of "2026-12"; None for anything else (or outside 1900-2999)."""
        match = _MONTH_PATTERN.match(text)
        if not match or not 1 <= int(match[2]) <= 12 or not 1900 <= int(match[1]) <= 2999:
            return None
        return cls(int(match[1]), int(match[2]))

    @property
    def value(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        return f"{calendar.month_name[self.month]} {self.year}"

    @property
    def days(self) -> list[date]:
        length = calendar.monthrange(self.year, self.month)[1]
        return [date(self.year, self.month, day) for day in range(1, length + 1)]

    @property
    def start(self) -> datetime:
        return timezone.make_aware(datetime(self.year, self.month, 1))

    @property
    def end(self) -> datetime:
        return self.next.start

    @property
    def previous(self) -> "Month":
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    @property
    def next(self) -> "Month":
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)


def person_edits(person, month: Month) -> models.QuerySet:
    return Edit.objects.filter(owner=person, created_at__gte=month.start, created_at__lt=month.end)


def team_edits(team: Team, month: Month) -> models.QuerySet:
    return Edit.objects.filter(
        owner__teams=team, created_at__gte=month.start, created_at__lt=month.end
    )


def credits_sum(expression) -> models.Sum:
    return models.Sum(expression, output_field=_CREDITS)


def cents(value: Decimal | None) -> Decimal:
    """A sum as credits to the cent (SQLite's sums come back with float noise)."""
    return (value or ZERO).quantize(ZERO)


def spent(edits: models.QuerySet) -> Decimal:
    return cents(edits.aggregate(total=credits_sum(SPENT))["total"])


# --- The usage page's figures and charts -----------------------------------------------------

CHART_HEIGHT = 120  # SVG units for the tallest bar
DAY_WIDTH = 20
MODEL_ROW = 28
MODEL_CHART_WIDTH = 380


@dataclass(frozen=True)
class Bar:
    """One bar of a chart, with its place in the SVG and the words that say what it shows."""

    label: str
    credits: Decimal
    edits: int
    x: float
    y: float
    width: float
    height: float

    @property
    def baseline(self) -> float:
        """Where a label beside the bar sits (a line of 14 units, centred on the bar)."""
        return self.y + self.height / 2 + 5

    @property
    def end(self) -> int:
        return round(self.x + self.width)

    @property
    def title(self) -> str:
        return f"{self.label}: {self.credits} credits, {self.edits} edit{'s' * (self.edits != 1)}"


@dataclass(frozen=True)
class Report:
    month: Month
    edits: int
    requested: Decimal
    billed: Decimal
    spent: Decimal
    by_day: list[Bar]
    by_model: list[Bar]

    @property
    def day_chart_width(self) -> int:
        return DAY_WIDTH * len(self.by_day)

    @property
    def model_chart_height(self) -> int:
        return MODEL_ROW * len(self.by_model)


def report(edits: models.QuerySet, month: Month) -> Report:
    """Totals, credits by day and by model: three aggregate queries."""
    totals = edits.aggregate(
        edits=models.Count("id"),
        requested=credits_sum("credits"),
        billed=credits_sum("billed_credits"),
        spent=credits_sum(SPENT),
    )
    daily = {
        row["day"]: row
        for row in edits.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(spent=credits_sum(SPENT), edits=models.Count("id"))
        .order_by("day")
    }
    per_model = list(
        edits.values("model")
        .annotate(spent=credits_sum(SPENT), edits=models.Count("id"))
        .order_by("-spent", "model")
    )
    for row in [*daily.values(), *per_model]:
        row["spent"] = cents(row["spent"])
    tallest = max([row["spent"] for row in daily.values()] + [ZERO])
    by_day = []
    for index, day in enumerate(month.days):
        row = daily.get(day, {"spent": ZERO, "edits": 0})
        height = float(row["spent"] / tallest) * CHART_HEIGHT if tallest else 0
        by_day.append(
            Bar(
                f"{day.day} {calendar.month_abbr[day.month]}",
                row["spent"],
                row["edits"],
                x=index * DAY_WIDTH + 2,
                y=CHART_HEIGHT - height,
                width=DAY_WIDTH - 4,
                height=height,
            )
        )
    widest = max([row["spent"] for row in per_model] + [ZERO])
    by_model = [
        Bar(
            row["model"],
            row["spent"],
            row["edits"],
            x=0,
            y=index * MODEL_ROW + 4,
            width=float(row["spent"] / widest) * MODEL_CHART_WIDTH if widest else 0,
            height=MODEL_ROW - 8,
        )
        for index, row in enumerate(per_model)
    ]
    return Report(
        month,
        totals["edits"],
        cents(totals["requested"]),
        cents(totals["billed"]),
        cents(totals["spent"]),
        by_day,
        by_model,
    )


CSV_HEADER = [
    "date", "person", "model", "size", "candidates", "results", "requested credits",
    "billed credits",
]  # fmt: skip


def csv_rows(edits: models.QuerySet):
    """One row an edit, oldest first, its results counted in the same query."""
    rows = (
        edits.annotate(result_count=models.Count("results"))
        .order_by("created_at", "id")
        .values_list(
            "created_at",
            "owner__username",
            "model",
            "size",
            "candidates",
            "result_count",
            "credits",
            "billed_credits",
        )
    )
    for created_at, person, *rest in rows.iterator():
        yield [timezone.localtime(created_at).date().isoformat(), _cell(person), *rest]


def _cell(text: str) -> str:
    """Text a spreadsheet would not run as a formula (usernames may start with + - or @)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


# --- Budgets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetLeft:
    name: str  # whose budget, as a sentence names it: "your monthly budget"
    budget: Decimal
    left: Decimal


def budgets_left(person) -> list[BudgetLeft]:
    """The person's own monthly budget and each of their teams', with what is left of each
    this month."""
    budgets = []
    own = PersonBudget.objects.filter(person=person).first()
    if own is not None:
        left = own.monthly_budget - spent(person_edits(person, Month.current()))
        budgets.append(BudgetLeft("your monthly budget", own.monthly_budget, max(left, ZERO)))
    teams = person.teams.filter(monthly_budget__isnull=False).order_by("name")
    return budgets + [team_budget_left(team) for team in teams]


def team_budget_left(team: Team) -> BudgetLeft | None:
    if team.monthly_budget is None:
        return None
    left = team.monthly_budget - spent(team_edits(team, Month.current()))
    name = f"team {team.name}'s monthly budget"
    return BudgetLeft(name, team.monthly_budget, max(left, ZERO))


def budget_problem(person, cost: Decimal | None, what: str = "This edit") -> str | None:
    """Why an edit (or `what` else) costing `cost` would overdraw one of the person's budgets,
    or None."""
    if not cost:
        return None
    for budget in budgets_left(person):
        if cost > budget.left:
            return f"{what} costs {cost:.2f} credits; {budget.name} has {budget.left:.2f} left."
    return None


class BudgetExceeded(throttle.LimitReached):
    """The edit would spend more than is left of a monthly budget; the message says which."""


def hold_budgets(person, cost: Decimal | None, what: str = "This edit") -> None:
    """Inside the transaction that creates the edit (the person's row already locked by
    throttle.hold_edit_limits): lock the person's teams too, so that teammates submitting at
    once are counted one after another, then refuse with BudgetExceeded past a budget."""
    teams = Team.objects.filter(pk__in=person.teams.values("pk"))
    list(teams.select_for_update().order_by("pk").values_list("pk"))  # one order: no deadlock
    if problem := budget_problem(person, cost, what):
        raise BudgetExceeded(problem)
