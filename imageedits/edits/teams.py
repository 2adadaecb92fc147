"""Teams in the app: making one, inviting people by a link, roles, and the review of shared edits
(comments with @mentions, a review status, a feed of what changed, in-app notifications).

Who sees what: a team-shared edit is seen by its owner and by the members of the owner's teams;
nobody else, whatever the URL. Owners manage their team (invite, remove, promote, budget);
a member who tries is refused with 403 (they know the team exists), anyone else gets 404."""

import functools
import re
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, models, transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from .models import (
    Activity,
    Comment,
    Edit,
    Invitation,
    Membership,
    Notification,
    Review,
    ShareLink,
    Team,
)

INVITATION_DAYS = 7
MAX_COMMENT_CHARACTERS = 2000
# @name: what Django's usernames may hold (letters, digits and @.+-_), the @ itself excepted.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.+-]+)")


class TeamProblem(Exception):
    """Something a person asked for that cannot be done, with the reason in plain words."""


# --- What a person may see --------------------------------------------------------------------


def team_edits(user) -> models.QuerySet:
    """Edits shared with the user's teams: the teammates' (read-only for the user) and the
    user's own, as the teammates see them."""
    return (
        Edit.objects.filter(shared_with_team=True)
        .filter(
            models.Q(owner__teams__members=user) | models.Q(owner=user, owner__teams__isnull=False)
        )
        .distinct()
        .select_related("owner")
    )


def visible_edits(user) -> models.QuerySet:
    """The user's own edits and those their teammates share with them."""
    return Edit.objects.filter(
        models.Q(owner=user) | models.Q(pk__in=team_edits(user).values("pk"))
    ).select_related("owner")


def can_see(user, edit: Edit) -> bool:
    return visible_edits(user).filter(pk=edit.pk).exists()


def image_url_name(user, edit: Edit) -> str:
    """Which view serves this edit's images to this person: the owner's, or the team's."""
    return "edit-image" if edit.owner_id == user.pk else "team-image"


def edit_url(user, edit: Edit) -> str:
    if edit.owner_id == user.pk:
        return edit.get_absolute_url()
    return reverse("team-edit", args=[edit.pk])


def versions(user, edit: Edit) -> tuple[list[Edit], list[Edit]]:
    """The edit's ancestors and children that this person may see, each with `url` set to the
    page that shows it to them: a remix of a teammate's edit does not reveal edits of theirs
    that are no longer shared, nor the teammates' remixes that are not."""
    ancestors, children = edit.lineage(), list(edit.children.all())
    if not ancestors and not children:
        return [], []
    candidates = [item.pk for item in ancestors + children]
    visible = set(visible_edits(user).filter(pk__in=candidates).values_list("pk", flat=True))
    ancestors = [item for item in ancestors if item.pk in visible]
    children = [item for item in children if item.pk in visible]
    for item in ancestors + children:
        item.url = edit_url(user, item)
    return ancestors, children


# --- Teams and roles --------------------------------------------------------------------------


def get_team_for_member(user, team_id: int) -> tuple[Team, Membership]:
    """The team and the person's membership; a team they are not in is a 404."""
    membership = get_object_or_404(
        Membership.objects.select_related("team"), team_id=team_id, user=user
    )
    return membership.team, membership


def get_team_for_owner(user, team_id: int) -> Team:
    """A team the person owns; 404 for a non-member, 403 for a member who is not an owner."""
    team, membership = get_team_for_member(user, team_id)
    if not membership.is_owner:
        raise PermissionDenied("Only the team's owners can do that.")
    return team


def create_team(owner, name: str) -> Team:
    name = " ".join(name.split())
    if not name:
        raise TeamProblem("Give the team a name.")
    if len(name) > 80:
        raise TeamProblem("A team's name can be at most 80 characters long.")
    try:
        with transaction.atomic():
            team = Team.objects.create(name=name)
    except IntegrityError:
        raise TeamProblem(f"There is already a team called “{name}”; pick another name.") from None
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    return team


def owners(team: Team) -> models.QuerySet:
    return team.memberships.filter(role=Membership.Role.OWNER)


def remove_member(team: Team, membership: Membership) -> None:
    """Remove someone (an owner removing a member, or a member leaving). The last owner
    cannot go: someone must be left to manage the team."""
    with transaction.atomic():
        list(Team.objects.select_for_update().filter(pk=team.pk))  # one change at a time
        if membership.is_owner and owners(team).count() == 1:
            raise TeamProblem(
                "The team's last owner cannot leave: make another member an owner first."
            )
        membership.delete()


def set_role(team: Team, membership: Membership, role: str) -> None:
    if role not in Membership.Role.values:
        raise TeamProblem("Choose owner or member.")
    with transaction.atomic():
        list(Team.objects.select_for_update().filter(pk=team.pk))
        if role == Membership.Role.MEMBER and membership.is_owner and owners(team).count() == 1:
            raise TeamProblem("The team needs an owner: make another member an owner first.")
        Membership.objects.filter(pk=membership.pk).update(role=role)


# --- Invitations ------------------------------------------------------------------------------


def invite(team: Team, inviter, who: str) -> tuple[Invitation, str]:
    """An invitation for a username or an e-mail address, and its token (shown only now).
    If the person has an account, they also find it among their notifications."""
    who = who.strip()
    if not who:
        raise TeamProblem("Type the username or e-mail address of the person to invite.")
    if len(who) > 254:
        raise TeamProblem("That is too long for a username or an e-mail address.")
    people = get_user_model().objects.filter(is_active=True)
    if "@" in who:
        matches = list(people.filter(email__iexact=who)[:2])
        if len(matches) > 1:  # e-mail addresses are not unique: ask for the username
            raise TeamProblem(f"Several people use {who}; invite them by username instead.")
        invitee = matches[0] if matches else None
        if invitee is None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", who):
            raise TeamProblem(f"“{who}” is not an e-mail address.")
    else:
        invitee = people.filter(username=who).first()
        if invitee is None:
            raise TeamProblem(f"Nobody has the username “{who}”. Check it, or use an e-mail.")
    if invitee is not None and team.members.filter(pk=invitee.pk).exists():
        raise TeamProblem(f"{invitee.get_username()} is already in {team.name}.")
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        team=team,
        invited_by=inviter,
        invitee_text=who,
        invitee=invitee,
        token_hash=hash_token(token),
        expires_at=timezone.now() + timedelta(days=INVITATION_DAYS),
    )
    if invitee is not None:
        notify(
            invitee,
            f"{inviter.get_username()} invited you to join {team.name}.",
            reverse("team-list"),
        )
    return invitation, token


def hash_token(token: str) -> str:
    return ShareLink.hash(token)  # one hashing rule for every capability token


def invitation_for(user, token: str) -> Invitation:
    """The invitation behind a link, for the person who opened it: 404 if unknown, or if it
    names another account. Used or expired ones are returned, to say so."""
    if len(token) > 100:
        raise Http404
    invitation = get_object_or_404(
        Invitation.objects.select_related("team", "invited_by"), token_hash=hash_token(token)
    )
    if invitation.invitee_id not in (None, user.pk):
        raise Http404
    return invitation


def answer(invitation: Invitation, user, accepted: bool) -> None:
    """Accept (join as a member) or decline an invitation: once, and before it expires."""
    if not invitation.is_open:
        raise TeamProblem(_closed_reason(invitation))
    if accepted and invitation.team.members.filter(pk=user.pk).exists():
        invitation.use(accepted=False)
        raise TeamProblem(f"You are already in {invitation.team.name}.")
    with transaction.atomic():
        if not invitation.use(accepted):
            raise TeamProblem(_closed_reason(invitation))
        if accepted:  # get_or_create: two invitations accepted at once make one membership
            Membership.objects.get_or_create(team=invitation.team, user=user)


def _closed_reason(invitation: Invitation) -> str:
    invitation.refresh_from_db()
    if invitation.used_at:
        return "This invitation has already been used."
    return "This invitation has expired: ask for a new one."


def open_invitations(user) -> models.QuerySet:
    return Invitation.objects.filter(
        invitee=user, used_at=None, expires_at__gt=timezone.now()
    ).select_related("team", "invited_by")


# --- Review -----------------------------------------------------------------------------------


def review_of(edit: Edit) -> Review:
    """The edit's review; an edit nobody has reviewed is a draft."""
    return Review.objects.filter(edit=edit).first() or Review(edit=edit)


def set_status(edit: Edit, user, status: str) -> None:
    if status not in Review.Status.values:
        raise TeamProblem("Choose draft, in review or approved.")
    Review.objects.update_or_create(
        edit=edit, defaults={"status": status, "changed_by": user, "changed_at": timezone.now()}
    )
    label = Review.Status(status).label
    Activity.objects.create(edit=edit, actor=user, kind=Activity.Kind.STATUS, detail=label)


def add_comment(edit: Edit, author, text: str) -> Comment:
    """A comment; each @username in it who can see the edit is notified."""
    text = text.strip()
    if not text:
        raise TeamProblem("Write something first.")
    if len(text) > MAX_COMMENT_CHARACTERS:
        raise TeamProblem(f"A comment can be at most {MAX_COMMENT_CHARACTERS} characters long.")
    comment = Comment.objects.create(edit=edit, author=author, text=text)
    Activity.objects.create(
        edit=edit, actor=author, kind=Activity.Kind.COMMENTED, detail=text[:200]
    )
    names = set(MENTION.findall(text)) - {author.get_username()}
    for person in get_user_model().objects.filter(username__in=names, is_active=True):
        if can_see(person, edit):
            notify(
                person,
                f"{author.get_username()} mentioned you on edit {edit.pk}: {text[:120]}",
                edit_url(person, edit),
            )
    return comment


def record_shared(edit: Edit) -> None:
    Activity.objects.create(edit=edit, actor=edit.owner, kind=Activity.Kind.SHARED)


def feed(team: Team) -> models.QuerySet:
    """What changed on the edits the team's members share with it, newest first: only edits
    still shared, by people still in the team."""
    return Activity.objects.filter(
        edit__shared_with_team=True, edit__owner__teams=team
    ).select_related("edit", "actor")


# --- Notifications ----------------------------------------------------------------------------


def notify(person, text: str, url: str) -> Notification:
    return Notification.objects.create(recipient=person, text=text[:300], url=url)


def unread_count(person) -> int:
    return Notification.objects.filter(recipient=person, read_at=None).count()


def notifications_context(request) -> dict:
    """Template context for the top bar's "Notifications (2)" link: counted only when a page
    shows the top bar (the template calls it), not for every polled fragment."""
    if not request.user.is_authenticated:
        return {}
    return {"unread_notifications": functools.partial(unread_count, request.user)}


def mark_read(person, notification_id: int | None = None) -> None:
    """Mark one of the person's notifications read, or all of them."""
    unread = Notification.objects.filter(recipient=person, read_at=None)
    if notification_id is not None:
        unread = unread.filter(pk=notification_id)
    unread.update(read_at=timezone.now())
