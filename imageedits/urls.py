from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.generic import RedirectView

from imageedits.edits import health, metrics, views
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
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=ThrottledAuthenticationForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("health/", health.alive, name="health"),
    path("ready/", health.ready, name="ready"),
    path("metrics/", metrics.view, name="metrics"),
]
