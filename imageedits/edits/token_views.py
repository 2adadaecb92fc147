"""The API tokens page (/settings/tokens/): make a token (shown once), see yours, revoke one."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import api_tokens
from .models import ApiToken


class TokenForm(forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=ApiToken._meta.get_field("name").max_length,
        error_messages={
            "required": "Give the token a name, e.g. the script or machine that will use it."
        },
    )


@login_required
@never_cache  # the page that shows a new token must not be kept anywhere
def tokens(request: HttpRequest) -> HttpResponse:
    """The page, and on POST a new token shown in the answer itself: no redirect, so that the
    token is never kept server-side (in a session or a message) to be shown after one."""
    form = TokenForm(request.POST if request.method == "POST" else None)
    new_token = ""
    if form.is_valid():
        _, new_token = api_tokens.create(request.user, form.cleaned_data["name"])
        form = TokenForm()  # empty again, for the next one
    context = {"tokens": request.user.api_tokens.all(), "new_token": new_token, "form": form}
    return render(request, "api/tokens.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(request.user.api_tokens, pk=token_id)
    token.revoke()
    messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
    return redirect("api-tokens")
