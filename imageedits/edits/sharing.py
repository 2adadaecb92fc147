"""Share links: make one for an edit, find the edit behind a token, and what a shared page may
show (results, the instruction, inputs only when the owner chose so; nothing else)."""

import secrets
from datetime import timedelta

from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from .models import Edit, ShareLink

# What the owner can pick: days until the link stops working (None: until revoked).
EXPIRY_CHOICES = [("", "Never"), ("1", "1 day"), ("7", "7 days"), ("30", "30 days")]


def create(edit: Edit, include_inputs: bool, expires_in_days: int | None) -> tuple[ShareLink, str]:
    """A new link and its token; the token is not stored, so this is the only time it is seen."""
    token = secrets.token_urlsafe(32)
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    link = ShareLink.objects.create(
        edit=edit,
        token_hash=ShareLink.hash(token),
        token_end=token[-4:],
        include_inputs=include_inputs,
        expires_at=expires_at,
    )
    return link, token


def url(request: HttpRequest, token: str) -> str:
    return request.build_absolute_uri(reverse("shared", args=[token]))


def active_link(token: str) -> ShareLink:
    """The active link for `token`; a revoked, expired or unknown one is a 404."""
    if len(token) > 100:
        raise Http404
    return get_object_or_404(
        ShareLink.active().select_related("edit"), token_hash=ShareLink.hash(token)
    )
