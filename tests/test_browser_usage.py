"""A person in Chromium sees what they spent, and a budget at work on the new-edit form."""

import csv
import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from imageedits.edits import usage
from imageedits.edits.models import Edit, PersonBudget, Team

from .conftest import log_in, make_png, open_account_menu

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fill_the_form(page, instruction="Make it a watercolour", results=1):
    with page.expect_response("**/edits/new/params/**"):  # the fields follow the model
        page.get_by_label("Model").select_option("nano-banana-pro")
    if results != 1:
        field = page.get_by_label("How many results")
        with page.expect_response("**/edits/new/params/**"):
            field.fill(str(results))
            field.press("Tab")  # the field is sent on change
    expect(page.get_by_text(re.compile(rf"^Cost: {results} "))).to_be_visible()
    page.get_by_label("Images", exact=True).set_input_files(
        {"name": "cat.png", "mimeType": "image/png", "buffer": make_png(300, 200)}
    )
    expect(page.get_by_role("img", name="Preview of cat.png")).to_be_visible()
    page.get_by_label("Instruction").fill(instruction)


def test_after_running_edits_the_usage_page_charts_them(page, alice, worker, simulator):
    log_in(page)
    fill_the_form(page, results=2)
    page.get_by_role("button", name="Submit edit").click()
    expect(page.get_by_role("img", name="Edited image 2")).to_be_visible(timeout=30_000)

    open_account_menu(page)

    page.get_by_role("link", name="Usage").click()

    expect(page.get_by_role("heading", name="Your usage")).to_be_visible()
    month = usage.Month.current()
    expect(page.get_by_role("heading", name=month.label)).to_be_visible()
    expect(page.locator("dd").nth(2)).to_have_text("0.70")  # billed credits
    expect(page.get_by_role("img", name="Credits by day")).to_be_visible()
    expect(page.get_by_role("img", name="Credits by model")).to_be_visible()
    bar_titles = page.locator("svg title").all_text_contents()
    assert "nano-banana-pro: 0.70 credits, 1 edit" in bar_titles
    assert any(title.endswith(": 0.70 credits, 1 edit") for title in bar_titles[:31])

    page.get_by_text("The charts as tables").click()
    model_table = page.get_by_role("table", name="Credits by model")
    expect(model_table.get_by_role("row", name="nano-banana-pro 1 0.70")).to_be_visible()

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    with open(download.value.path(), newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[1][1:] == ["alice", "nano-banana-pro", "", "2", "2", "0.70", "0.70"]

    page.get_by_label("Month", exact=True).fill(month.previous.value)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text(f"No edits in {month.previous.label}.")).to_be_visible()


def test_a_team_member_opens_the_teams_usage(page, alice, bob):
    team = Team.objects.create(name="Design")
    team.members.add(alice, bob)
    Edit.objects.create(owner=bob, prompt="p", model="nano-banana", credits=Decimal("0.14"),
                        billed_credits=Decimal("0.14"), status=Edit.Status.SUCCEEDED)  # fmt: skip
    log_in(page)
    open_account_menu(page)
    page.get_by_role("link", name="Usage").click()
    page.get_by_role("link", name="Team Design").click()
    expect(page.get_by_role("heading", name="Team Design: usage")).to_be_visible()
    bar = page.get_by_role("img", name="Credits by model").locator("title")
    expect(bar).to_have_text("nano-banana: 0.14 credits, 1 edit")


def test_the_form_shows_the_budget_left_and_refuses_an_edit_past_it(page, alice, simulator):
    PersonBudget.objects.create(person=alice, monthly_budget=Decimal("0.50"))
    log_in(page)
    expect(
        page.get_by_text("Your monthly budget: 0.50 of 0.50 credits left this month.")
    ).to_be_visible()

    fill_the_form(page, results=2)
    expect(page.get_by_text(re.compile(r"^Cost: 2 × 0.35 = 0.70 credits"))).to_be_visible()
    expect(
        page.get_by_text("0.50 of 0.50 credits left this month, not enough for this edit.")
    ).to_be_visible()
    page.get_by_role("button", name="Submit edit").click()

    expect(page.get_by_role("alert")).to_have_text(
        "This edit costs 0.70 credits; your monthly budget has 0.50 left."
    )
    assert Edit.objects.count() == 0
    assert not [r for r in simulator.received if r["path"].endswith("/images/edits")]


def test_the_usage_page_fits_a_phone_screen(browser, live_server, alice):
    Edit.objects.create(owner=alice, prompt="p", model="nano-banana-pro", credits=Decimal("0.35"),
                        billed_credits=Decimal("0.35"), status=Edit.Status.SUCCEEDED)  # fmt: skip
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    phone = context.new_page()
    log_in(phone)
    phone.goto("/usage/")
    expect(phone.get_by_role("img", name="Credits by model")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    context.close()
