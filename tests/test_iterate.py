"""Iterating: edit a result, reuse an edit's settings, run an edit again, and the tree of
versions that connects them."""

import pytest
from django.urls import reverse

from imageedits.edits import images, services
from imageedits.edits.models import Edit

from .conftest import make_png, run_edit

pytestmark = pytest.mark.django_db


def finished(owner, prompt="make it sepia", parent=None, **kwargs) -> Edit:
    new = services.NewEdit(prompt, "gpt-image-2", kwargs.pop("size", ""),
                           [images.reencode(make_png())], [], parent=parent, **kwargs)  # fmt: skip
    edit = services.create_edit(owner, new)
    run_edit(edit)
    return Edit.objects.get(pk=edit.pk)


def submit(client, **fields):
    data = {"prompt": "now blur it", "model": "gpt-image-2", "size": "auto"}
    data.update(fields)
    return client.post(reverse("edit-new"), data)


def test_edit_this_result_carries_the_result_in_and_records_the_parent(logged_in, alice):
    first = finished(alice)
    form = logged_in.get(reverse("edit-new"), {"from_result": first.pk, "position": 0})
    page = form.content.decode()
    assert f'name="carry" value="result-{first.pk}-0"' in page
    assert f'src="/edits/{first.pk}/result/0/"' in page

    response = submit(logged_in, carry=f"result-{first.pk}-0")
    second = Edit.objects.get(parent=first)
    assert response.url == second.get_absolute_url()
    with second.inputs.get().file.open("rb") as copy, first.results.get().file.open("rb") as src:
        assert copy.read() == src.read()


def test_a_carried_image_of_someone_else_is_refused(client, alice, bob, stored_files):
    theirs = finished(alice)
    before = stored_files()
    client.force_login(bob)
    response = submit(client, carry=f"result-{theirs.pk}-0")
    assert "An image carried over from another edit is gone." in response.content.decode()
    assert not Edit.objects.filter(owner=bob).exists() and stored_files() == before
    assert submit(client, carry="result-x-0").status_code == 400


def test_reuse_settings_fills_in_everything_of_a_past_edit(logged_in, alice, simulator):
    url = f"{simulator.url}/samples/square.png"
    past = services.create_edit(alice, services.NewEdit(
        "dark mode, keep the text", "gpt-image-2", "1600x1200", [images.reencode(make_png())],
        [url], params={"quality": "high"}, candidates=3,
    ))  # fmt: skip
    page = logged_in.get(reverse("edit-new"), {"reuse": past.pk}).content.decode()
    assert "dark mode, keep the text</textarea>" in page
    assert 'value="custom" selected' in page and 'value="1600x1200"' in page
    assert 'value="3"' in page and '<option value="high" selected>' in page
    assert f'name="carry" value="input-{past.pk}-0"' in page
    assert url in page

    submit(logged_in, prompt="dark mode, keep the text", size="custom", custom_size="1600x1200",
           candidates="3", quality="high", carry=f"input-{past.pk}-0", image_urls=url)  # fmt: skip
    again = Edit.objects.exclude(pk=past.pk).get()
    assert (again.size, again.candidates, again.params) == ("1600x1200", 3, {"quality": "high"})
    # With a file among the inputs gpt-image-2 takes no URLs: the app fetched it and keeps it.
    assert [bool(i.file) for i in again.inputs.all()] == [True, True]


def test_reuse_of_someone_elses_edit_gives_a_blank_form(client, alice, bob):
    theirs = finished(alice, "alice's secret")
    client.force_login(bob)
    page = client.get(reverse("edit-new"), {"reuse": theirs.pk}).content.decode()
    assert "alice's secret" not in page and "carry" not in page


def test_run_again_makes_a_new_edit_with_the_same_everything(logged_in, alice):
    past = finished(alice, size="1024x1536")
    response = logged_in.post(reverse("edit-run-again", args=[past.pk]))
    again = Edit.objects.exclude(pk=past.pk).get()
    assert response.url == again.get_absolute_url()
    assert (again.prompt, again.model, again.size) == (past.prompt, past.model, past.size)
    assert again.inputs.count() == past.inputs.count() == 1
    assert again.inputs.get().file.name != past.inputs.get().file.name  # its own copy
    run_edit(again)
    assert Edit.objects.get(pk=again.pk).status == Edit.Status.SUCCEEDED


def test_run_again_of_someone_elses_edit_is_404(client, alice, bob):
    theirs = finished(alice)
    client.force_login(bob)
    assert client.post(reverse("edit-run-again", args=[theirs.pk])).status_code == 404
    assert Edit.objects.count() == 1


def test_the_tree_of_versions_walks_back_to_the_original(logged_in, alice):
    original = finished(alice, "original: sepia")
    second = finished(alice, "second: blur", parent=original)
    third = finished(alice, "third: mirror", parent=second)
    sibling = finished(alice, "branch: invert", parent=original)

    assert third.lineage() == [original, second]
    page = logged_in.get(third.get_absolute_url()).content.decode().split("Versions", 1)[1]
    assert page.index("original: sepia") < page.index("second: blur") < page.index("third: mirror")
    top = logged_in.get(original.get_absolute_url()).content.decode()
    assert "second: blur" in top and "branch: invert" in top and sibling.parent == original
