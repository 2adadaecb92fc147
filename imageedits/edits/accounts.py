"""The person behind a session, from the shared cache rather than the database: every page
needs them, and each open edit page polls every second.

The cached copy is dropped whenever the user row is saved or deleted (a new password, being
made inactive), in every process, since the cache is the shared one sessions live in; and after
USER_CACHE_SECONDS at the latest, for changes made without saving the model."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import caches
from django.db.models.signals import post_delete, post_save

USER_CACHE_SECONDS = 300


def _cache():
    return caches[settings.SESSION_CACHE_ALIAS]


def _key(user_id) -> str:
    return f"imageedits:user:{user_id}"


class CachedModelBackend(ModelBackend):
    """Django's own backend (log-in, permissions, the active check), with the user of each
    request read from the cache."""

    def get_user(self, user_id):
        user = _cache().get(_key(user_id))
        if user is None:
            user = super().get_user(user_id)  # None for an unknown or inactive user
            if user is not None:
                _cache().set(_key(user_id), user, USER_CACHE_SECONDS)
        return user


def forget_user(sender, instance, **kwargs) -> None:
    _cache().delete(_key(instance.pk))


post_save.connect(forget_user, sender=get_user_model(), dispatch_uid="forget-user-on-save")
post_delete.connect(forget_user, sender=get_user_model(), dispatch_uid="forget-user-on-delete")
