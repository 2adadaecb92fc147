"""The person behind each request comes from the shared cache, and never outlives a change to
their account."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from imageedits.edits import accounts


def test_a_person_is_read_from_the_database_once_then_from_the_cache(logged_in, alice):
    def user_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert logged_in.get(reverse("edit-list")).status_code == 200
        return sum('"auth_user"' in query["sql"] for query in captured)

    assert user_queries() == 1
    assert user_queries() == 0


def test_a_person_made_inactive_is_logged_out_at_once(logged_in, alice):
    assert logged_in.get(reverse("edit-list")).status_code == 200  # now in the cache
    alice.is_active = False
    alice.save()
    assert logged_in.get(reverse("edit-list")).url.startswith(reverse("login"))


def test_a_new_password_ends_the_other_sessions_at_once(logged_in, alice):
    assert logged_in.get(reverse("edit-list")).status_code == 200
    alice.set_password("a-brand-new-password")
    alice.save()
    assert logged_in.get(reverse("edit-list")).url.startswith(reverse("login"))


def test_a_deleted_person_is_gone_from_the_cache(logged_in, alice):
    assert logged_in.get(reverse("edit-list")).status_code == 200
    user_id = alice.pk
    alice.delete()
    assert accounts.CachedModelBackend().get_user(user_id) is None
    assert logged_in.get(reverse("edit-list")).url.startswith(reverse("login"))
