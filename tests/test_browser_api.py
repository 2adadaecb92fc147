"""A person sets up API access: makes a token (shown once), a script uses it, they revoke it;
and they read the API's interactive docs, which run under the app's strict CSP."""

import httpx
import pytest
from playwright.sync_api import expect

from imageedits.edits import api_tokens
from imageedits.edits.models import ApiToken

from .conftest import log_in, open_account_menu

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_make_use_and_revoke_an_api_token(page, live_server, alice):
    log_in(page)
    open_account_menu(page)
    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    expect(page.get_by_text("No tokens yet.")).to_be_visible()

    page.get_by_role("button", name="Make a token").click()  # no name: the browser asks
    expect(page.get_by_label("New token")).to_have_count(0)
    page.get_by_label("Token name").fill("nightly script")
    page.get_by_role("button", name="Make a token").click()
    expect(page.get_by_text("Your new token, shown only now.")).to_be_visible()
    token = page.get_by_label("New token").input_value()
    assert token.startswith("iet_")
    row = page.get_by_role("row", name="nightly script")
    expect(row).to_contain_text(f"…{token[-4:]}")
    expect(row).to_contain_text("never")

    api = f"{live_server.url}/api/v1/edits/"
    used = httpx.get(api, headers={"Authorization": f"Bearer {token}"})
    assert used.status_code == 200 and used.json()["count"] == 0

    open_account_menu(page)

    page.get_by_role("link", name="API tokens").click()  # shown once: never again
    expect(page.get_by_label("New token")).to_have_count(0)
    assert token not in page.content()
    expect(page.get_by_role("row", name="nightly script")).not_to_contain_text("never")

    page.get_by_role("button", name="Revoke nightly script").click()
    expect(page.get_by_text("Token “nightly script” revoked: it no longer works.")).to_be_visible()
    expect(page.get_by_role("row", name="nightly script")).to_contain_text("revoked")
    refused = httpx.get(api, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert ApiToken.objects.get().revoked_at is not None


def test_the_api_docs_work_under_the_strict_csp(page, alice):
    """Swagger UI, from the app's own static files, down to a call made with a token."""
    blocked = []
    page.on("console", lambda message: blocked.append(message.text)
            if "Content Security Policy" in message.text else None)  # fmt: skip
    log_in(page)
    open_account_menu(page)
    page.get_by_role("link", name="API tokens").click()
    page.get_by_role("link", name="JSON API").click()
    expect(page.get_by_role("heading", name="imageedits API")).to_be_visible()
    expect(page.get_by_text("/api/v1/edits/{edit_id}/share-links/").first).to_be_visible()
    token = api_tokens.create(alice, "docs")[1]
    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".modal-ux")  # Swagger UI's, with no dialog role
    dialog.get_by_role("textbox").fill(token)
    dialog.get_by_role("button", name="Apply credentials").click()
    dialog.get_by_role("button", name="Close", exact=True).click()
    page.get_by_role("button", name="GET /api/v1/edits/ List your edits").click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    page.screenshot(path="/tmp/docs.png", full_page=True)
    responses = page.locator(".live-responses-table")
    expect(responses.locator("td.response-col_status").nth(1)).to_have_text("200")
    expect(responses).to_contain_text('"count": 0')
    assert blocked == []
