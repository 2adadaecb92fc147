"""Limits on how fast one person can use the app: edits started per minute, edits under way at
once, and failed log-ins."""

import contextlib
import math
import unicodedata
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from .models import ACTIVE, Edit

LOGIN_WINDOW = timedelta(minutes=15)


def request_bytes(request) -> int:
    """The size a request says its body has, to refuse one past a limit before it is read."""
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def oversized_problem(request, limit: int, what: str) -> str | None:
    """Why a request says it is too large to read (`what` names its images), or None. Checked
    before the body is read: Django caps form fields but not files."""
    if request.method != "POST" or request_bytes(request) <= limit:
        return None
    return f"{what} add up to more than {filesizeformat(limit)}; send fewer or smaller ones."


def edit_limit_problem(owner) -> str | None:
    """Why `owner` may not start another edit right now, or None."""
    in_flight = _counted(Edit.objects.filter(owner=owner, status__in=ACTIVE))
    if in_flight >= settings.EDITS_IN_FLIGHT:
        return (
            f"You have {in_flight} edit{'s' if in_flight != 1 else ''} under way, the most at "
            "once. Start this one when one of them has finished."
        )
    since = timezone.now() - timedelta(minutes=1)
    recent = _counted(Edit.objects.filter(owner=owner, created_at__gte=since))
    if recent >= settings.EDITS_PER_MINUTE:
        return f"You have started {recent} edits in the last minute. Wait a moment and try again."
    return None


def retry_after(owner) -> int | None:
    """Seconds until the per-minute limit lets `owner` start another edit, for a Retry-After
    header; None while edits under way hold them back (no one knows when those will end)."""
    if _counted(Edit.objects.filter(owner=owner, status__in=ACTIVE)) >= settings.EDITS_IN_FLIGHT:
        return None
    now = timezone.now()
    recent = Edit.objects.filter(owner=owner, created_at__gte=now - timedelta(minutes=1))
    if _counted(recent) < settings.EDITS_PER_MINUTE:
        return None
    oldest = recent.order_by("created_at").values_list("created_at", flat=True).first()
    return max(1, math.ceil(60 - (now - oldest).total_seconds()))


def _counted(edits) -> int:
    """Edits as the limits count them: a batch or comparison (Edit.batch) counts as one."""
    alone = edits.filter(batch=None).count()
    return alone + edits.exclude(batch=None).order_by().values("batch").distinct().count()


class LimitReached(Exception):
    """The person may not start another edit right now; the message says why."""


def hold_edit_limits(owner) -> None:
    """Inside a transaction: lock the person's row, so that their submissions are counted one
    after another (twelve at once cannot all pass a limit of five), then refuse past a limit
    with LimitReached. The lock is held until the transaction ends, with the new edit in it."""
    list(get_user_model().objects.select_for_update().filter(pk=owner.pk).values_list("pk"))
    if problem := edit_limit_problem(owner):
        raise LimitReached(problem)


def client_address(request) -> str:
    """The person's address. Behind our own TLS proxy every request comes from the proxy, so
    the address the proxy appended to X-Forwarded-For (the last one) is the real one; earlier
    entries come from the client and can be forged."""
    if settings.BEHIND_TLS_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.rsplit(",", 1)[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


class LoginThrottle:
    """For a log-in form: refuse a username or an address after too many failures. Every
    log-in form (the app's and the admin's) counts into the same counters."""

    def clean(self):
        """Each attempt takes a place in the counters first (one atomic increment each), and
        gives it back if the password was right: parallel guesses cannot all slip in before
        the first failure is counted."""
        keys = self._failure_keys()
        taken = [_count(key) for key, _ in keys]
        if any(count > limit for count, (_, limit) in zip(taken, keys, strict=True)):
            minutes = int(LOGIN_WINDOW.total_seconds() // 60)
            raise forms.ValidationError(
                f"Too many failed log-ins. Try again in {minutes} minutes.", code="throttled"
            )
        cleaned = super().clean()  # a wrong password raises: the places stay taken
        for key, _ in keys:
            with contextlib.suppress(ValueError):  # the window ended in between
                cache.decr(key)
        return cleaned

    def _failure_keys(self) -> list[tuple[str, int]]:
        # As Django reads the username (NFKC, so "ｄａｖｅ" is "dave"), then without case: every
        # spelling that logs in as one person counts as that person.
        username = unicodedata.normalize("NFKC", self.data.get("username") or "")
        username = username.strip().casefold()
        address = client_address(self.request) if self.request else ""
        return [
            (f"login-failures:user:{username}", settings.LOGIN_FAILURES_PER_USER),
            (f"login-failures:ip:{address}", settings.LOGIN_FAILURES_PER_ADDRESS),
        ]


def _count(key: str) -> int:
    cache.add(key, 0, timeout=LOGIN_WINDOW.total_seconds())
    return cache.incr(key)


class ThrottledAuthenticationForm(LoginThrottle, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(LoginThrottle, AdminAuthenticationForm):
    pass
