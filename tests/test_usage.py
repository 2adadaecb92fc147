"""Spend: what each edit requested and was billed."""

import importlib
from datetime import datetime
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from imageedits.edits import images, services
from imageedits.edits.models import Edit, Team

from .conftest import make_png, run_edit

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
