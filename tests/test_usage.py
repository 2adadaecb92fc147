"""Spend: what each edit requested and was billed, the usage pages and their CSV, and the
monthly budgets that refuse an edit past them."""

import csv
import importlib
import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from imageedits.edits import images, services, usage
from imageedits.edits.models import Edit, PersonBudget, Team

from .conftest import make_png, queued, run_edit

pytestmark = pytest.mark.django_db(transaction=True)


def create(owner, model="nano-banana-pro", candidates=1) -> Edit:
    upload = images.reencode(make_png(64, 64))
    new = services.NewEdit("make it sepia", model, "", [upload], [], candidates=candidates)
    return services.submit(owner, new)


def post(client, **fields):
    data = {
        "prompt": "make it sepia",
        "model": "nano-banana-pro",
        "images": [SimpleUploadedFile("photo.png", make_png(), "image/png")],
    }
    data.update(fields)
    return client.post(reverse("edit-new"), data)


def row(owner, model="nano-banana-pro", credits="0.35", billed="0.35", when=None, **fields):
    """A finished edit, written as it would be stored."""
    return Edit.objects.create(
        owner=owner,
        prompt="a row",
        model=model,
        credits=Decimal(credits) if credits is not None else None,
        billed_credits=Decimal(billed) if billed is not None else None,
        status=fields.pop("status", Edit.Status.SUCCEEDED),
        created_at=when or timezone.now(),
        **fields,
    )


def day(year, month, day_of_month, hour=12) -> datetime:
    return timezone.make_aware(datetime(year, month, day_of_month, hour))


@pytest.fixture
def charlie(django_user_model):
    return django_user_model.objects.create_user("charlie", "charlie@example.com", "charlie-pw")


@pytest.fixture
def design(alice, bob):
    team = Team.objects.create(name="Design")
    team.members.add(alice, bob)
    return team


# --- Credits requested and billed ---------------------------------------------------------------


def test_an_edit_under_way_has_requested_credits_and_no_bill_yet(alice):
    edit = create(alice, candidates=3)
    assert edit.credits == Decimal("1.05")
    assert Edit.objects.get().billed_credits is None


def test_an_edit_that_succeeds_is_billed_for_every_result(alice):
    edit = create(alice, candidates=3)
    run_edit(edit)
    edit.refresh_from_db()
    assert edit.status == Edit.Status.SUCCEEDED
    assert edit.billed_credits == Decimal("1.05")


def test_an_edit_with_some_results_is_billed_for_those_only(alice, simulator):
    simulator.inject("forbidden", times=1)  # one candidate refused, not retried
    edit = create(alice, candidates=3)
    run_edit(edit)
    edit.refresh_from_db()
    assert (edit.status, edit.results.count()) == (Edit.Status.SUCCEEDED, 2)
    assert (edit.credits, edit.billed_credits) == (Decimal("1.05"), Decimal("0.70"))


def test_a_failed_edit_is_billed_nothing(alice, simulator):
    simulator.inject("used_up", times=2)
    edit = create(alice, candidates=2)
    run_edit(edit)
    edit.refresh_from_db()
    assert edit.status == Edit.Status.FAILED
    assert (edit.credits, edit.billed_credits) == (Decimal("0.70"), Decimal("0.00"))


def test_dall_e_2_is_billed_per_result_of_its_one_request(alice):
    edit = create(alice, model="dall-e-2", candidates=2)
    run_edit(edit)
    edit.refresh_from_db()
    assert (edit.credits, edit.billed_credits) == (Decimal("0.04"), Decimal("0.04"))


def test_running_a_failed_edit_again_bills_it_afresh(alice, simulator):
    simulator.inject("used_up", times=1)
    edit = create(alice)
    run_edit(edit)
    edit.refresh_from_db()
    assert edit.billed_credits == Decimal("0.00")
    assert services.rerun_edit(edit)
    assert Edit.objects.get().billed_credits is None  # under way: the requested credits count
    run_edit(edit)
    assert Edit.objects.get().billed_credits == Decimal("0.35")


def test_the_migration_bills_edits_that_ended_before_billing_was_recorded(alice):
    edit = create(alice, candidates=3)
    run_edit(edit)
    Edit.objects.update(billed_credits=None)
    migration = importlib.import_module("imageedits.edits.migrations.0010_spend_and_budgets")
    migration.bill_finished_edits(apps, None)
    assert Edit.objects.get().billed_credits == Decimal("1.05")


# --- Aggregation ------------------------------------------------------------------------------


def test_the_report_adds_up_a_month_by_day_and_by_model(alice, bob):
    november = usage.Month(2026, 11)
    row(alice, when=day(2026, 11, 3))
    row(alice, when=day(2026, 11, 3, 23), credits="1.05", billed="0.70")
    row(alice, model="gpt-image-2", credits="0.05", billed=None, when=day(2026, 11, 20),
        status=Edit.Status.RUNNING)  # fmt: skip
    row(alice, when=day(2026, 10, 31, 23))  # another month
    row(alice, when=day(2026, 12, 1, 0))
    row(bob, when=day(2026, 11, 3))  # another person

    report = usage.report(usage.person_edits(alice, november), november)

    assert report.edits == 3
    assert report.requested == Decimal("1.45")
    assert report.billed == Decimal("1.05")
    assert report.spent == Decimal("1.10")  # billed, or requested while under way
    assert len(report.by_day) == 30
    third = report.by_day[2]
    assert (third.credits, third.edits) == (Decimal("1.05"), 2)
    assert third.title == "3 Nov: 1.05 credits, 2 edits"
    assert third.height == usage.CHART_HEIGHT  # the tallest
    assert report.by_day[19].title == "20 Nov: 0.05 credits, 1 edit"
    assert report.by_day[0].height == 0
    assert [(bar.label, bar.credits) for bar in report.by_model] == [
        ("nano-banana-pro", Decimal("1.05")),
        ("gpt-image-2", Decimal("0.05")),
    ]


def test_the_usage_page_shows_totals_charts_and_tables(client, alice):
    row(alice, when=day(2026, 11, 3), credits="1.05", billed="0.70")
    client.force_login(alice)
    page = client.get(reverse("usage"), {"month": "2026-11"}).content.decode()
    assert "November 2026" in page
    assert "<dt>Billed credits</dt><dd>0.70</dd>" in page
    assert "<dt>Requested credits</dt><dd>1.05</dd>" in page
    assert "<title>3 Nov: 0.70 credits, 1 edit</title>" in page
    assert "<title>nano-banana-pro: 0.70 credits, 1 edit</title>" in page
    assert '<th scope="row">3 Nov</th><td>1</td><td>0.70</td>' in page
    assert 'href="/usage.csv?month=2026-11"' in page
    charts = page[page.index("<svg") : page.rindex("</svg>")]
    assert '=""' not in charts  # every bar and label has its place


def test_a_month_without_edits_says_so(logged_in):
    page = logged_in.get(reverse("usage"), {"month": "2020-02"}).content.decode()
    assert "No edits in February 2020." in page


def test_a_month_that_is_not_one_is_refused_with_how_to_write_it(logged_in):
    response = logged_in.get(reverse("usage"), {"month": "2026-13"})
    assert response.status_code == 400
    assert "Choose a month as YYYY-MM, for example 2026-12." in response.content.decode()
    assert logged_in.get(reverse("usage-csv"), {"month": "soon"}).status_code == 400
    assert logged_in.get(reverse("usage"), {"month": "9999-12"}).status_code == 400


def test_the_csv_has_a_row_per_edit_of_the_person_in_the_month(client, alice, bob):
    row(alice, when=day(2026, 11, 3), credits="1.05", billed="0.70", size="", candidates=3)
    row(alice, model="dall-e-2", when=day(2026, 11, 4), credits="0.02", billed="0.02",
        size="512x512")  # fmt: skip
    row(alice, when=day(2026, 10, 4))
    row(bob, when=day(2026, 11, 4))
    client.force_login(alice)

    response = client.get(reverse("usage-csv"), {"month": "2026-11"})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="usage-2026-11.csv"' in response["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert lines == [
        usage.CSV_HEADER,
        ["2026-11-03", "alice", "nano-banana-pro", "", "3", "0", "1.05", "0.70"],
        ["2026-11-04", "alice", "dall-e-2", "512x512", "1", "0", "0.02", "0.02"],
    ]


def test_a_username_in_the_csv_is_never_a_spreadsheet_formula(client, django_user_model):
    mallory = django_user_model.objects.create_user("-2+3", "m@example.com", "pw")
    row(mallory)
    client.force_login(mallory)
    lines = list(csv.reader(io.StringIO(client.get(reverse("usage-csv")).content.decode())))
    assert lines[1][1] == "'-2+3"


def test_the_csv_counts_the_results_that_came_back(client, alice):
    edit = create(alice, candidates=2)
    run_edit(edit)
    client.force_login(alice)
    lines = list(csv.reader(io.StringIO(client.get(reverse("usage-csv")).content.decode())))
    assert lines[1][1:] == ["alice", "nano-banana-pro", "", "2", "2", "0.70", "0.70"]


# --- Teams: what their members spend, for members only ------------------------------------------


def test_a_team_page_adds_up_every_members_edits(client, alice, bob, charlie, design):
    row(alice, when=day(2026, 11, 3))
    row(bob, when=day(2026, 11, 4), credits="0.28", billed="0.28", model="nano-banana-2")
    row(charlie, when=day(2026, 11, 4))  # not a member
    client.force_login(alice)
    page = client.get(reverse("usage-team", args=[design.pk]), {"month": "2026-11"})
    text = page.content.decode()
    assert "Team Design: usage" in text
    assert "<dt>Billed credits</dt><dd>0.63</dd>" in text
    csv_text = client.get(reverse("usage-team-csv", args=[design.pk]), {"month": "2026-11"})
    people = [line[1] for line in csv.reader(io.StringIO(csv_text.content.decode()))][1:]
    assert people == ["alice", "bob"]


def test_a_team_usage_is_not_found_for_someone_outside_it(client, charlie, design):
    client.force_login(charlie)
    assert client.get(reverse("usage-team", args=[design.pk])).status_code == 404
    assert client.get(reverse("usage-team-csv", args=[design.pk])).status_code == 404
    assert client.get(reverse("usage-team", args=[design.pk + 100])).status_code == 404


def test_the_usage_pages_need_a_log_in(client, design):
    for url in (reverse("usage"), reverse("usage-csv"), reverse("usage-team", args=[design.pk])):
        assert client.get(url).status_code == 302


# --- Monthly budgets ----------------------------------------------------------------------------


def test_an_edit_past_the_persons_budget_is_refused_and_nothing_is_kept(
    logged_in, alice, stored_files
):
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("1.00"))
    row(alice, billed="0.50", credits="0.70")

    response = post(logged_in, candidates="2")

    assert response.status_code == 400
    assert (
        "This edit costs 0.70 credits; your monthly budget has 0.50 left."
        in response.content.decode()
    )
    assert Edit.objects.count() == 1
    assert stored_files() == []
    assert queued() == []


def test_an_edit_within_the_budget_goes_ahead(logged_in, alice):
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("0.70"))
    response = post(logged_in, candidates="2")
    assert response.status_code == 302
    assert Edit.objects.get().credits == Decimal("0.70")


def test_edits_under_way_hold_their_requested_credits(alice):
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("1.00"))
    create(alice, candidates=2)  # 0.70, not run yet
    with pytest.raises(usage.BudgetExceeded, match="your monthly budget has 0.30 left"):
        create(alice)


def test_last_months_spend_does_not_count(alice):
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("0.35"))
    row(alice, when=timezone.now().replace(day=1) - timedelta(days=2))
    assert create(alice).credits == Decimal("0.35")


def test_a_teams_budget_counts_every_members_spend(logged_in, alice, bob, design):
    design.monthly_budget = Decimal("1.00")
    design.save()
    row(bob, billed="0.70", credits="0.70")

    response = post(logged_in)

    assert (
        "This edit costs 0.35 credits; team Design&#x27;s monthly budget has 0.30 left."
        in response.content.decode()
    )
    assert Edit.objects.filter(owner=alice).count() == 0


def test_running_a_failed_edit_again_is_refused_past_the_budget(alice, simulator):
    simulator.inject("used_up", times=2)
    edit = create(alice, candidates=2)
    run_edit(edit)
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("0.50"))
    with pytest.raises(usage.BudgetExceeded, match="costs 0.70 credits"):
        services.rerun_edit(edit)
    assert Edit.objects.get().status == Edit.Status.FAILED


def test_the_form_shows_what_is_left_beside_the_cost(logged_in, alice, design):
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("2.00"))
    design.monthly_budget = Decimal("0.50")
    design.save()
    row(alice, billed="0.35", credits="0.35")

    page = logged_in.get(reverse("edit-new")).content.decode()
    assert "Your monthly budget: <strong>1.65 of 2.00 credits left</strong> this month." in page
    assert "Team Design&#x27;s monthly budget: <strong>0.15 of 0.50 credits left</strong>" in page

    fragment = logged_in.get(
        reverse("edit-params"), {"model": "nano-banana-pro", "candidates": "5"}
    ).content.decode()
    assert "1.65 of 2.00 credits left</strong> this month, not enough for this edit." in fragment
    assert "0.15 of 0.50 credits left</strong> this month, not enough for this edit." in fragment


def test_the_usage_page_shows_the_budgets_left(logged_in, alice, design):
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("2.00"))
    design.monthly_budget = Decimal("0.50")
    design.save()
    row(alice, billed="0.35", credits="0.35")
    page = logged_in.get(reverse("usage")).content.decode()
    assert "Your monthly budget: 1.65 of 2.00 credits left this month." in page
    team_page = logged_in.get(reverse("usage-team", args=[design.pk])).content.decode()
    assert "Team Design&#x27;s monthly budget: 0.15 of 0.50 credits left this month." in team_page


def test_an_admin_sets_person_and_team_budgets(admin_client, alice, design):
    response = admin_client.post(
        reverse("admin:edits_personbudget_add"), {"person": alice.pk, "monthly_budget": "5.00"}
    )
    assert response.status_code == 302
    assert alice.budget.monthly_budget == Decimal("5.00")
    page = admin_client.get(reverse("admin:edits_team_change", args=[design.pk]))
    assert 'name="monthly_budget"' in page.content.decode()


def test_teammates_submitting_at_once_cannot_overdraw_the_team_budget(
    live_server, alice, bob, design, settings
):
    """The team's row is held while the edit is counted and created: concurrent submissions
    of its members are counted one after another."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    settings.EDITS_PER_MINUTE = 100
    design.monthly_budget = Decimal("1.05")  # three edits of nano-banana-pro
    design.save()
    sessions = []
    for person in (alice, bob):
        client = Client()
        client.force_login(person)
        cookies = {name: morsel.value for name, morsel in client.cookies.items()}
        with httpx.Client(base_url=live_server.url, cookies=cookies) as http:
            http.get("/edits/new/")
            cookies["csrftoken"] = http.cookies["csrftoken"]
        sessions.append(cookies)
    start = threading.Barrier(6)
    image = make_png()

    def submit(index: int) -> str:
        cookies = sessions[index % 2]
        with httpx.Client(base_url=live_server.url, cookies=cookies, timeout=60) as http:
            data = {"prompt": "blur", "model": "nano-banana-pro",
                    "csrfmiddlewaretoken": cookies["csrftoken"]}  # fmt: skip
            start.wait()
            response = http.post("/edits/new/", data=data, files={"images": ("a.png", image)})
            if response.status_code == 302 and "/edits/" in response.headers["location"]:
                return "made"
            if "team Design&#x27;s monthly budget has 0.00 left" in response.text:
                return "refused"
            return f"{response.status_code} {response.text[:200]}"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(submit, range(6)))
    assert outcomes == ["made"] * 3 + ["refused"] * 3
    assert usage.spent(usage.team_edits(design, usage.Month.current())) == Decimal("1.05")
