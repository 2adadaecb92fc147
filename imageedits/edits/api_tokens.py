"""Personal API tokens: make one (its only showing), find the person behind one, revoke it.

A token is "iet_" and 256 random bits: the prefix lets the logs' redaction (and secret scanners)
recognise one wherever it turns up. Only its SHA-256 is stored, as for share links."""

import secrets
from datetime import timedelta

from django.utils import timezone

from .models import ApiToken

PREFIX = "iet_"
# Writing "last used" on every call would turn each read into a write; once a minute is enough
# to tell a token in use from a forgotten one.
LAST_USED_EVERY = timedelta(minutes=1)


def create(owner, name: str) -> tuple[ApiToken, str]:
    """A new token and its text; the text is not stored, so this is the only time it is seen."""
    token = PREFIX + secrets.token_urlsafe(32)
    api_token = ApiToken.objects.create(
        owner=owner, name=name, token_hash=ApiToken.hash(token), token_end=token[-4:]
    )
    return api_token, token


def owner_for(token: str):
    """The active person whose unrevoked token this is, or None."""
    if not token.startswith(PREFIX) or len(token) > 100:
        return None
    api_token = (
        ApiToken.objects.filter(token_hash=ApiToken.hash(token), revoked_at=None)
        .select_related("owner")
        .first()
    )
    if api_token is None or not api_token.owner.is_active:
        return None
    now = timezone.now()
    if api_token.last_used_at is None or api_token.last_used_at < now - LAST_USED_EVERY:
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
    return api_token.owner
