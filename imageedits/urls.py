from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from imageedits.edits import (
    batch_views,
    health,
    metrics,
    team_views,
    token_views,
    usage_views,
    views,
)
from imageedits.edits.api import api
from imageedits.edits.throttle import ThrottledAdminAuthenticationForm, ThrottledAuthenticationForm

# The admin's log-in counts failures with the app's: one throttle for every log-in.
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="edit-new"), name="home"),
    path("edits/", views.gallery, name="edit-list"),
    path("edits/newer/", views.gallery_newer, name="edit-list-newer"),
    path("edits/bulk/", views.bulk, name="edit-bulk"),
    path("collections/new/", views.collection_create, name="collection-new"),
    path("team/edits/<int:edit_id>/", views.team_detail, name="team-edit"),
    path(
        "team/edits/<int:edit_id>/<str:kind>/<int:position>/",
        views.team_image,
        name="team-image",
    ),
    path("edits/new/", views.new, name="edit-new"),
    path("edits/new/params/", views.params, name="edit-params"),
    path("edits/new/size-check/", views.size_check, name="edit-size-check"),
    path("edits/<int:edit_id>/", views.detail, name="edit-detail"),
    path("edits/<int:edit_id>/status/", views.status, name="edit-status"),
    path("edits/<int:edit_id>/rerun/", views.rerun, name="edit-rerun"),
    path("edits/<int:edit_id>/run-again/", views.run_again, name="edit-run-again"),
    path("edits/<int:edit_id>/cancel/", views.cancel, name="edit-cancel"),
    path("edits/<int:edit_id>/choose/<int:position>/", views.choose, name="edit-choose"),
    path("edits/<int:edit_id>/card/", views.card, name="edit-card"),
    path("edits/<int:edit_id>/star/", views.star, name="edit-star"),
    path("edits/<int:edit_id>/team/", views.team_share, name="edit-team-share"),
    path("edits/<int:edit_id>/share/", views.share_create, name="edit-share"),
    path(
        "edits/<int:edit_id>/share/<int:link_id>/revoke/",
        views.share_revoke,
        name="edit-share-revoke",
    ),
    path("s/<str:token>/", views.shared, name="shared"),
    path("s/<str:token>/<str:kind>/<int:position>/", views.shared_image, name="shared-image"),
    path("edits/<int:edit_id>/delete/", views.delete, name="edit-delete"),
    path(
        "edits/<int:edit_id>/<str:kind>/<int:position>/",
        views.image,
        name="edit-image",
    ),
    path(
        "hooks/submissions/<int:submission_id>/<str:secret>/",
        views.callback,
        name="edit-callback",
    ),
    path("teams/", team_views.team_list, name="team-list"),
    path("teams/<int:team_id>/", team_views.team_detail, name="team-detail"),
    path("teams/<int:team_id>/invite/", team_views.invite, name="team-invite"),
    path("teams/<int:team_id>/leave/", team_views.leave, name="team-leave"),
    path("teams/<int:team_id>/budget/", team_views.budget, name="team-budget"),
    path("teams/<int:team_id>/feed/", team_views.feed, name="team-feed"),
    path(
        "teams/<int:team_id>/members/<int:membership_id>/remove/",
        team_views.member_remove,
        name="team-member-remove",
    ),
    path(
        "teams/<int:team_id>/members/<int:membership_id>/role/",
        team_views.member_role,
        name="team-member-role",
    ),
    path("invitations/<str:token>/", team_views.invitation, name="invitation"),
    path(
        "invitations/mine/<int:invitation_id>/",
        team_views.invitation_answer,
        name="invitation-answer",
    ),
    path("edits/<int:edit_id>/review/", team_views.review, name="edit-review"),
    path("edits/<int:edit_id>/comments/", team_views.comment, name="edit-comment"),
    path("edits/<int:edit_id>/review/status/", team_views.review_status, name="edit-review-status"),
    path("notifications/", team_views.notifications, name="notifications"),
    path("batches/", batch_views.batch_list, name="batch-list"),
    path("batches/new/", batch_views.batch_new, name="batch-new"),
    path("batches/<int:batch_id>/", batch_views.batch_detail, name="batch-detail"),
    path("batches/<int:batch_id>/status/", batch_views.batch_status, name="batch-status"),
    path("batches/<int:batch_id>/retry/", batch_views.batch_retry, name="batch-retry"),
    path("batches/<int:batch_id>/cancel/", batch_views.batch_cancel, name="batch-cancel"),
    path("batches/<int:batch_id>/results.zip", batch_views.batch_download, name="batch-download"),
    path("compare/new/", batch_views.compare_new, name="compare-new"),
    path("compare/<int:batch_id>/", batch_views.compare_detail, name="compare-detail"),
    path("compare/<int:batch_id>/status/", batch_views.compare_status, name="compare-status"),
    path(
        "compare/<int:batch_id>/choose/<int:edit_id>/",
        batch_views.compare_choose,
        name="compare-choose",
    ),
    path("usage/", usage_views.person, name="usage"),
    path("usage.csv", usage_views.person_csv, name="usage-csv"),
    path("usage/team/<int:team_id>/", usage_views.team, name="usage-team"),
    path("usage/team/<int:team_id>.csv", usage_views.team_csv, name="usage-team-csv"),
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("settings/tokens/", token_views.tokens, name="api-tokens"),
    path("settings/tokens/<int:token_id>/revoke/", token_views.revoke, name="api-token-revoke"),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("health/", health.alive, name="health"),
    path("ready/", health.ready, name="ready"),
    path("metrics/", metrics.view, name="metrics"),
]
