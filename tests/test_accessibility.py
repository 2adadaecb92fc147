"""axe-core (axe-playwright-python) on every main page, in the light and the dark theme: no
serious or critical violation (contrast, names and labels, landmarks...)."""

import io

import pytest
from axe_playwright_python.sync_playwright import Axe

from imageedits.edits import batches, images, services, sharing, teams
from imageedits.edits.models import Edit

from .conftest import log_in, make_png, run_edit, run_tasks

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Axe()


def problems(page) -> list[str]:
    """The serious and critical violations on the page, a line each with where they are."""
    found = AXE.run(page).response["violations"]
    return [
        f"{page.url} {violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:5])
        for violation in found
        if violation["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_main_page_passes_axe(page, alice, bob, theme):
    upload = images.reencode(make_png(320, 240))
    edit = services.create_edit(
        alice, services.NewEdit("make it sepia", "gpt-image-2", "", [upload], [], candidates=2)
    )
    run_edit(edit)
    Edit.objects.create(
        owner=alice, prompt="a famous painting", model="gpt-image-2", status=Edit.Status.FAILED,
        error_message="The prompt was rejected by content moderation.",
    )  # fmt: skip
    _, token = sharing.create(edit, include_inputs=True, expires_in_days=None)
    # A team with bob, whose shared edit alice reviews, and an invitation waiting for carol.
    team = teams.create_team(alice, "Design")
    team.members.add(bob)
    bobs_edit = services.create_edit(
        bob, services.NewEdit("make it blue", "gpt-image-2", "", [upload], [])
    )
    run_edit(bobs_edit)
    Edit.objects.filter(pk=bobs_edit.pk).update(shared_with_team=True)
    teams.record_shared(bobs_edit)
    teams.add_comment(bobs_edit, bob, "@alice what do you think?")
    teams.set_status(bobs_edit, bob, "in_review")
    teams.invite(team, alice, "carol@example.com")
    # A batch of two pictures and a comparison of two models, both run.
    sources = [batches.Source(f"photo-{n}.png", upload=io.BytesIO(make_png())) for n in (1, 2)]
    wanted = batches.Settings("make it sepia", "gpt-image-2", "", {}, 1)
    batch = batches.start_batch(alice, wanted, sources)
    named = batches.NamedImage("photo-1.png", images.reencode(make_png()))
    comparison = batches.start_compare(
        alice, "make it sepia", ["gpt-image-2", "gpt-image-1"], named
    )
    run_tasks()
    page.emulate_media(color_scheme=theme)

    found = []
    page.goto("/login/")
    found += problems(page)
    log_in(page)
    found += problems(page)  # the new edit form
    paths = [
        "/edits/", edit.get_absolute_url(), f"/s/{token}/", "/edits/999999/",
        f"/team/edits/{bobs_edit.pk}/", "/teams/", f"/teams/{team.pk}/",
        f"/teams/{team.pk}/feed/", "/notifications/", "/usage/", f"/usage/team/{team.pk}/",
        "/settings/tokens/", "/batches/", "/batches/new/", batch.get_absolute_url(),
        "/compare/new/", comparison.get_absolute_url(),
    ]  # fmt: skip
    for path in paths:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        found += problems(page)
    assert found == []
