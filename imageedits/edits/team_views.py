"""The team pages: teams and their members, invitations, the review of an edit (comments and
status), the team feed and the notifications. The rules live in teams.py."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from . import teams
from .forms import id_or_none
from .models import Review, Team


class BudgetForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["monthly_budget"]
        labels = {"monthly_budget": "Monthly budget (credits)"}


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    """The person's teams, invitations waiting for them, and a form to make a team."""
    if request.method == "POST":
        try:
            team = teams.create_team(request.user, request.POST.get("name", ""))
        except teams.TeamProblem as problem:
            messages.error(request, str(problem))
            return redirect("team-list")
        messages.success(request, f"Team “{team.name}” made. Invite people to it below.")
        return redirect("team-detail", team.pk)
    context = {
        "memberships": request.user.memberships.select_related("team").order_by("team__name"),
        "invitations": teams.open_invitations(request.user),
    }
    return render(request, "teams/list.html", context)


@login_required
@require_GET
def team_detail(request: HttpRequest, team_id: int) -> HttpResponse:
    team, membership = teams.get_team_for_member(request.user, team_id)
    return _team_page(request, team, membership)


def _team_page(request, team, membership, new_invite_url="", form=None, status=200):
    context = {
        "team": team,
        "membership": membership,
        "members": team.memberships.select_related("user"),
        "invitations": team.invitations.filter(used_at=None).select_related("invited_by")
        if membership.is_owner
        else (),
        "new_invite_url": new_invite_url,
        "budget_form": form or BudgetForm(instance=team),
        "invitation_days": teams.INVITATION_DAYS,
    }
    return render(request, "teams/detail.html", context, status=status)


@login_required
@require_POST
def invite(request: HttpRequest, team_id: int) -> HttpResponse:
    team = teams.get_team_for_owner(request.user, team_id)
    try:
        _, token = teams.invite(team, request.user, request.POST.get("who", ""))
    except teams.TeamProblem as problem:
        messages.error(request, str(problem))
        return redirect("team-detail", team.pk)
    url = request.build_absolute_uri(reverse("invitation", args=[token]))
    membership = team.memberships.get(user=request.user)
    return _team_page(request, team, membership, new_invite_url=url)


@login_required
@require_POST
def member_remove(request: HttpRequest, team_id: int, membership_id: int) -> HttpResponse:
    team = teams.get_team_for_owner(request.user, team_id)
    member = get_object_or_404(team.memberships.select_related("user"), pk=membership_id)
    try:
        teams.remove_member(team, member)
    except teams.TeamProblem as problem:
        messages.error(request, str(problem))
        return redirect("team-detail", team.pk)
    if member.user_id == request.user.pk:
        messages.success(request, f"You left {team.name}.")
        return redirect("team-list")
    messages.success(request, f"{member.user.get_username()} is no longer in {team.name}.")
    return redirect("team-detail", team.pk)


@login_required
@require_POST
def member_role(request: HttpRequest, team_id: int, membership_id: int) -> HttpResponse:
    team = teams.get_team_for_owner(request.user, team_id)
    member = get_object_or_404(team.memberships.select_related("user"), pk=membership_id)
    try:
        teams.set_role(team, member, request.POST.get("role", ""))
    except teams.TeamProblem as problem:
        messages.error(request, str(problem))
    return redirect("team-detail", team.pk)


@login_required
@require_POST
def leave(request: HttpRequest, team_id: int) -> HttpResponse:
    team, membership = teams.get_team_for_member(request.user, team_id)
    try:
        teams.remove_member(team, membership)
    except teams.TeamProblem as problem:
        messages.error(request, str(problem))
        return redirect("team-detail", team.pk)
    messages.success(request, f"You left {team.name}.")
    return redirect("team-list")


@login_required
@require_POST
def budget(request: HttpRequest, team_id: int) -> HttpResponse:
    team = teams.get_team_for_owner(request.user, team_id)
    form = BudgetForm(request.POST, instance=team)
    if not form.is_valid():
        membership = team.memberships.get(user=request.user)
        return _team_page(request, team, membership, form=form, status=400)
    form.save()
    messages.success(request, "Monthly budget saved.")
    return redirect("team-detail", team.pk)


@login_required
@require_GET
def feed(request: HttpRequest, team_id: int) -> HttpResponse:
    team, _ = teams.get_team_for_member(request.user, team_id)
    activities = list(teams.feed(team)[:100])
    for activity in activities:
        activity.edit_url = teams.edit_url(request.user, activity.edit)
    return render(request, "teams/feed.html", {"team": team, "activities": activities})


# --- Invitations ------------------------------------------------------------------------------


@login_required
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation link: shows what it is for (GET), accepts or declines it (POST)."""
    found = teams.invitation_for(request.user, token)
    if request.method == "POST":
        return _answer(request, found)
    return render(request, "teams/invitation.html", {"invitation": found})


@login_required
@require_POST
def invitation_answer(request: HttpRequest, invitation_id: int) -> HttpResponse:
    """Accept or decline an invitation made for this account, from the Teams page."""
    found = get_object_or_404(teams.open_invitations(request.user), pk=invitation_id)
    return _answer(request, found)


def _answer(request: HttpRequest, found) -> HttpResponse:
    accepted = request.POST.get("answer") == "accept"
    try:
        teams.answer(found, request.user, accepted)
    except teams.TeamProblem as problem:
        messages.error(request, str(problem))
        return redirect("team-list")
    if accepted:
        messages.success(request, f"You joined {found.team.name}.")
        return redirect("team-detail", found.team_id)
    messages.success(request, f"Invitation to {found.team.name} declined.")
    return redirect("team-list")


# --- Review of an edit ------------------------------------------------------------------------


def _review(request: HttpRequest, edit, problem: str = "") -> HttpResponse:
    return render(request, "teams/review.html", review_context(edit, problem))


def review_context(edit, problem: str = "") -> dict:
    return {
        "edit": edit,
        "comments": edit.comments.select_related("author"),
        "review": teams.review_of(edit),
        "review_choices": Review.Status.choices,
        "comment_problem": problem,
    }


@login_required
@require_GET
def review(request: HttpRequest, edit_id: int) -> HttpResponse:
    edit = get_object_or_404(teams.visible_edits(request.user), pk=edit_id)
    return _review(request, edit)


@login_required
@require_POST
def comment(request: HttpRequest, edit_id: int) -> HttpResponse:
    edit = get_object_or_404(teams.visible_edits(request.user), pk=edit_id)
    try:
        teams.add_comment(edit, request.user, request.POST.get("text", ""))
    except teams.TeamProblem as problem:
        if not request.htmx:
            messages.error(request, str(problem))
            return redirect(teams.edit_url(request.user, edit))
        return _review(request, edit, problem=str(problem))
    if not request.htmx:
        return redirect(teams.edit_url(request.user, edit))
    return _review(request, edit)


@login_required
@require_POST
def review_status(request: HttpRequest, edit_id: int) -> HttpResponse:
    edit = get_object_or_404(teams.visible_edits(request.user), pk=edit_id)
    try:
        teams.set_status(edit, request.user, request.POST.get("status", ""))
    except teams.TeamProblem as problem:
        messages.error(request, str(problem))
    if not request.htmx:
        return redirect(teams.edit_url(request.user, edit))
    return _review(request, edit)


# --- Notifications ----------------------------------------------------------------------------


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    """The person's notifications, newest first; POST marks one (or all) read."""
    if request.method == "POST":
        teams.mark_read(request.user, id_or_none(request.POST.get("notification", "")))
        return redirect("notifications")
    listed = request.user.notifications.all()[:100]
    return render(request, "teams/notifications.html", {"notifications": listed})
