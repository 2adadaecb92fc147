import functools
import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from . import (
    bulk_actions,
    catalog,
    forms,
    pipeline,
    services,
    sharing,
    storage,
    team_views,
    teams,
    throttle,
)
from .forms import EditForm
from .gallery import PAGE_SIZE, GalleryFilter
from .models import Collection, Edit, Submission

# What the page of an edit under way shows it going through (Submission.stage).
STAGES = [
    ("queued", "Queued"),
    ("sent", "Sent"),
    ("retrying", "Retrying"),
    ("downloading", "Downloading"),
]
# A callback carries the answer again, result images in base64 included: up to ten of them.
MAX_CALLBACK_BYTES = 200 * 1024 * 1024


def _get_edit_for_user(request: HttpRequest, edit_id: int) -> Edit:
    """The user's own edit; someone else's is a 404, never a 403."""
    return get_object_or_404(Edit, pk=edit_id, owner=request.user)


@login_required
def new(request: HttpRequest) -> HttpResponse:
    limit = settings.EDIT_MAX_REQUEST_BYTES
    if refusal := throttle.oversized_problem(request, limit, "This edit's images"):
        form = EditForm()
        context = {"form": form, "refusal": refusal, "recent": [], **form.model_context()}
        return render(request, "edits/new.html", context, status=413)
    initial = forms.starting_values(request.GET, request.user)
    form = EditForm(
        request.POST or None, request.FILES or None, owner=request.user, initial=initial
    )
    if request.method == "POST" and (problem := throttle.edit_limit_problem(request.user)):
        form.add_error(None, problem)
    if request.method == "POST" and form.is_valid():
        try:
            return redirect(services.submit(request.user, form.new_edit()))
        except throttle.LimitReached as refusal:  # reached while this form was being checked
            form.add_error(None, str(refusal))
    recent = list(request.user.edits.prefetch_related("results")[:8])
    context = {
        "form": form,
        "recent": recent,
        # Offered again under the instruction field, newest first, each once.
        "recent_prompts": list(dict.fromkeys(edit.prompt for edit in recent))[:5],
        "carried": form.carried_previews(),
        **form.model_context(),
    }
    return render(request, "edits/new.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def params(request: HttpRequest) -> HttpResponse:
    """The form's model-dependent fields, for the model (and values) in the query; unbound, so
    that nothing is judged before the person submits."""
    form = EditForm(initial=request.GET.dict(), owner=request.user)
    return render(request, "edits/new.html#params", {"form": form, **form.model_context()})


@login_required
@require_GET
def size_check(request: HttpRequest) -> HttpResponse:
    """The live message under a custom size: the same rule the form applies on submit."""
    model = catalog.MODELS.get(request.GET.get("model", ""), catalog.MODELS[catalog.DEFAULT_MODEL])
    size = request.GET.get("custom_size", "").strip().lower().replace(" ", "")
    problem = catalog.size_error(model, size) if size else None
    return render(request, "edits/new.html#size_message", {"size_problem": problem})


@login_required
@require_GET
@vary_on_headers("HX-Request")
def gallery(request: HttpRequest) -> HttpResponse:
    """The person's edits, newest first, filtered and a page at a time."""
    filters = GalleryFilter(request.GET, owner=request.user)
    team = request.GET.get("tab") == "team"
    edits = teams.team_edits(request.user) if team else request.user.edits.all()
    page = Paginator(filters.apply(edits), PAGE_SIZE).get_page(request.GET.get("page"))
    template = "edits/gallery.html#grid" if request.htmx else "edits/gallery.html"
    context = {
        "filters": filters,
        "page": page,
        "team": team,
        "collections": request.user.collections.all(),
        "has_team": request.user.teams.exists(),
        "teams": request.user.teams.prefetch_related("members") if team else (),
    }
    return render(request, template, context)


@login_required
@require_GET
@never_cache
def gallery_newer(request: HttpRequest) -> HttpResponse:
    """Cards for the person's edits newer than `after`, for the top of the history: polled, so
    it answers 204 (htmx leaves the page alone) from one query while there are none."""
    after = forms.id_or_none(request.GET.get("after", "")) or 0
    edits = list(GalleryFilter().apply(request.user.edits.filter(pk__gt=after)))
    if not edits:
        return HttpResponse(status=204)
    context = {"edits": edits, "newest": edits[0], "oob": True, "team": False}
    return render(request, "edits/gallery.html#newer", context)


@login_required
@require_POST
def star(request: HttpRequest, edit_id: int) -> HttpResponse:
    edit = _get_edit_for_user(request, edit_id)
    Edit.objects.filter(pk=edit.pk).update(starred=not edit.starred)
    edit.refresh_from_db(fields=["starred"])
    if request.htmx:
        return render(request, "edits/gallery.html#star", {"edit": edit})
    return redirect(edit)


@login_required
@require_POST
def collection_create(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "").strip()[:80]
    if not name:
        messages.error(request, "Give the collection a name.")
        return redirect("edit-list")
    collection, created = Collection.objects.get_or_create(owner=request.user, name=name)
    if created:
        messages.success(
            request,
            f"Collection “{name}” made. Tick edits and choose “Add to collection”, or pick it "
            "when you start an edit.",
        )
    return redirect("edit-list")  # where the edits to tick are


@login_required
@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    """Act on the edits ticked in the gallery: delete (after asking), file into a collection,
    or download their results as one ZIP."""
    ids = [forms.id_or_none(value) for value in request.POST.getlist("selected")]
    edits = request.user.edits.filter(pk__in=[pk for pk in ids if pk is not None])
    if not edits:
        messages.error(request, "Tick at least one edit first.")
        return redirect("edit-list")
    action = request.POST.get("action")
    if action == "zip":
        return FileResponse(
            bulk_actions.results_zip(edits), as_attachment=True,
            filename="imageedits-results.zip", content_type="application/zip",
        )  # fmt: skip
    if action == "collect":
        collection_id = forms.id_or_none(request.POST.get("collection", ""))
        collection = get_object_or_404(request.user.collections, pk=collection_id)
        collection.edits.add(*edits)
        added = len(edits)
        messages.success(request, f"{added} edit{pluralize(added)} added to “{collection.name}”.")
        return redirect(f"{reverse('edit-list')}?collection={collection.pk}")
    if action == "delete" and request.POST.get("confirmed"):
        count = len(edits)
        for edit in edits:
            edit.delete()
        messages.success(request, f"{count} edit{pluralize(count)} deleted, images and all.")
        return redirect("edit-list")
    if action == "delete":
        return render(request, "edits/delete.html", {"edits": edits})
    return HttpResponseBadRequest("Unknown action.")


@login_required
@require_POST
def team_share(request: HttpRequest, edit_id: int) -> HttpResponse:
    edit = _get_edit_for_user(request, edit_id)
    Edit.objects.filter(pk=edit.pk).update(shared_with_team=not edit.shared_with_team)
    shared = not edit.shared_with_team
    if shared:
        teams.record_shared(edit)
    messages.success(
        request, "Shared with your team." if shared else "No longer shared with your team."
    )
    return redirect(edit)


@login_required
@require_GET
def team_detail(request: HttpRequest, edit_id: int) -> HttpResponse:
    """A teammate's shared edit: its results and inputs, to download, comment on, review, or
    start one's own edit from ("Edit this result", "Reuse settings")."""
    edit = get_object_or_404(teams.team_edits(request.user), pk=edit_id)
    if edit.owner_id == request.user.pk:
        return redirect(edit)  # one's own edit opens as one's own
    ancestors, children = teams.versions(request.user, edit)
    context = {
        **team_views.review_context(edit),
        "results": edit.results_chosen_first(),
        "inputs": edit.inputs.all(),
        "maker": edit.owner.get_username(),
        "ancestors": ancestors,
        "children": children,
    }
    return render(request, "edits/team.html", context)


@login_required
@require_GET
def team_image(request: HttpRequest, edit_id: int, kind: str, position: int) -> HttpResponse:
    """A teammate's shared edit's images: what its page shows and what a remix carries over."""
    edit = get_object_or_404(teams.team_edits(request.user), pk=edit_id)
    kinds = {"input", "input-preview", "mask", "result", "thumbnail", "preview"}
    return _serve_image(request, edit, kind, position, kinds)


@login_required
@require_GET
@never_cache
def card(request: HttpRequest, edit_id: int) -> HttpResponse:
    """One gallery card, polled while its edit is under way: 204 (htmx leaves it alone) from
    one query while its status is the one the card shows."""
    seen = request.GET.get("seen")
    if seen in Edit.ACTIVE and request.user.edits.filter(pk=edit_id, status=seen).exists():
        return HttpResponse(status=204)
    edit = get_object_or_404(
        GalleryFilter().apply(Edit.objects.filter(owner=request.user)), pk=edit_id
    )
    response = render(request, "edits/gallery.html#card", {"edit": edit})
    if not edit.is_active:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@login_required
def delete(request: HttpRequest, edit_id: int) -> HttpResponse:
    """Ask first (GET), then delete the edit and every file it stored (POST)."""
    edit = _get_edit_for_user(request, edit_id)
    if request.method == "POST":
        edit.delete()
        messages.success(request, f"Edit {edit_id} and its images were deleted.")
        return redirect("edit-list")
    return render(request, "edits/delete.html", {"edits": [edit]})


@login_required
@require_GET
def detail(request: HttpRequest, edit_id: int) -> HttpResponse:
    edit = _get_edit_for_user(request, edit_id)
    ancestors, children = teams.versions(request.user, edit)
    context = {
        **team_views.review_context(edit),
        **_status_context(edit),
        "ancestors": ancestors,
        "children": children,
    }
    return render(request, "edits/detail.html", context)


@require_GET
@never_cache
def status(request: HttpRequest, edit_id: int) -> HttpResponse:
    """The polled fragment; 286 tells htmx to stop polling once the edit has ended.

    The page polls twice a second, sending the signed token of the progress it shows. While
    that still holds, the answer is 204 (htmx leaves the page alone) from one query, before
    the session or the person is looked at: an edit page is open for every edit under way."""
    if Edit.unchanged(edit_id, request.GET.get("seen", "")):
        return HttpResponse(status=204)
    return _status_fragment(request, edit_id)


@login_required
def _status_fragment(request: HttpRequest, edit_id: int) -> HttpResponse:
    edit = _get_edit_for_user(request, edit_id)
    response = render(request, "edits/detail.html#status", _status_context(edit))
    if not edit.is_active:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@login_required
@require_GET
def image(request: HttpRequest, edit_id: int, kind: str, position: int) -> HttpResponse:
    """A stored input, result, thumbnail or preview, served to the edit's owner only."""
    edit = _get_edit_for_user(request, edit_id)
    kinds = {"input", "input-preview", "mask", "result", "raw", "thumbnail", "preview"}
    return _serve_image(request, edit, kind, position, kinds)


def _serve_image(
    request: HttpRequest, edit: Edit, kind: str, position: int, kinds: set[str]
) -> HttpResponse:
    stored = _stored_image(edit, kind, position, kinds)
    download_name = ""
    if kind in ("result", "raw") and request.GET.get("download"):
        extension = stored.name.rsplit(".", 1)[-1]
        suffix = "-model-output" if kind == "raw" else ""
        download_name = f"{edit.file_stem}-{position + 1}{suffix}.{extension}"
    # ?stream=1: the form's scripts read the pixels (a mask, an image carried over), which a
    # redirect to the bucket's origin would keep from them.
    response = _image_response(stored, download_name, stream=request.GET.get("stream") == "1")
    if response.status_code == 200:  # a signed redirect must not outlive its signature
        response["Cache-Control"] = "private, max-age=86400, immutable"
    return response


def _stored_image(edit: Edit, kind: str, position: int, allowed: set[str]):
    """One stored image of `edit`, if `kind` is among those the caller may serve; else 404."""
    if kind not in allowed:
        raise Http404
    if kind in ("input", "input-preview"):
        item = get_object_or_404(edit.inputs, position=position, url="")
        # Images stored before previews existed are shown as they are.
        return item.preview if kind == "input-preview" and item.preview else item.file
    if kind == "mask":
        if not edit.mask:
            raise Http404
        return edit.mask
    result = get_object_or_404(edit.results, position=position)
    stored = {
        "result": result.file,
        "raw": result.raw_file,
        "thumbnail": result.thumbnail,
        "preview": result.preview or result.file,
    }[kind]
    if not stored:
        raise Http404
    return stored


def _image_response(stored, download_name: str = "", stream: bool = False) -> HttpResponse:
    """A stored image, as an image only: no sniffing, no scripts, no embedding."""
    response = storage.response(stored, download_name, stream)
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@login_required
@require_POST
def run_again(request: HttpRequest, edit_id: int) -> HttpResponse:
    """A new edit with everything of this one."""
    edit = _get_edit_for_user(request, edit_id)
    try:
        return redirect(services.run_again(edit))
    except (services.NoInput, throttle.LimitReached) as refusal:
        messages.error(request, str(refusal))
        return redirect(edit)


@login_required
@require_POST
def cancel(request: HttpRequest, edit_id: int) -> HttpResponse:
    edit = _get_edit_for_user(request, edit_id)
    if edit.cancel():
        messages.success(request, "The edit was cancelled.")
        if edit.batch_id:  # its place in the batch goes to the next image
            pipeline.release(edit.batch_id)
    return redirect(edit)


@login_required
@require_POST
def choose(request: HttpRequest, edit_id: int, position: int) -> HttpResponse:
    """Make one of the edit's results the one shown first (history, share links)."""
    edit = _get_edit_for_user(request, edit_id)
    if not edit.choose(position):
        raise Http404
    messages.success(request, f"Result {position + 1} is now the chosen one.")
    return redirect(edit)


@login_required
@require_POST
def rerun(request: HttpRequest, edit_id: int) -> HttpResponse:
    edit = _get_edit_for_user(request, edit_id)
    try:
        if services.rerun_edit(edit):
            messages.success(request, "The edit is running again.")
    except throttle.LimitReached as refusal:
        messages.error(request, str(refusal))
    return redirect(edit)


@login_required
@require_POST
def share_create(request: HttpRequest, edit_id: int) -> HttpResponse:
    edit = _get_edit_for_user(request, edit_id)
    if not edit.results.exists():  # e.g. a form left open on an edit that then failed
        return _share_section(request, edit, problem="This edit has no result to share.")
    days = request.POST.get("expires_in_days", "")
    _, token = sharing.create(
        edit,
        include_inputs=request.POST.get("include_inputs") == "on",
        expires_in_days=int(days) if days in {"1", "7", "30"} else None,
    )
    return _share_section(request, edit, new_url=sharing.url(request, token))


@login_required
@require_POST
def share_revoke(request: HttpRequest, edit_id: int, link_id: int) -> HttpResponse:
    edit = _get_edit_for_user(request, edit_id)
    get_object_or_404(edit.share_links, pk=link_id).revoke()
    return _share_section(request, edit)


def _share_section(
    request: HttpRequest, edit: Edit, new_url: str = "", problem: str = ""
) -> HttpResponse:
    if not request.htmx:
        if new_url:
            messages.success(request, f"Share link made (shown only now): {new_url}")
        if problem:
            messages.error(request, problem)
        return redirect(edit)
    context = {
        "edit": edit,
        "new_url": new_url,
        "share_problem": problem,
        "expiry_choices": sharing.EXPIRY_CHOICES,
        "chosen": request.POST,  # the next link starts with the same choices
    }
    return render(request, "edits/detail.html#share", context)


def _share_page(view):
    """A share link that does not work is our own 404 page, in every mode: never Django's
    debug page, which would list the site's URLs to whoever holds an old link."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, token: str, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, token, *args, **kwargs)
        except Http404:
            return _shared_headers(render(request, "404.html", {"share_link": True}, status=404))

    return wrapper


@require_GET
@_share_page
def shared(request: HttpRequest, token: str) -> HttpResponse:
    """What a share link shows, to anyone who has it, logged in or not."""
    link = sharing.active_link(token)
    link.count_view()
    edit = link.edit
    context = {
        "link": link,
        "edit": edit,
        "token": token,
        "results": edit.results_chosen_first(),
        "inputs": edit.inputs.exclude(file="") if link.include_inputs else [],
        "image_url": request.build_absolute_uri(
            reverse("shared-image", args=[token, "result", edit.chosen_position])
        ),
    }
    return _shared_headers(render(request, "edits/shared.html", context))


@require_GET
@_share_page
def shared_image(request: HttpRequest, token: str, kind: str, position: int) -> HttpResponse:
    link = sharing.active_link(token)
    allowed = {"result", "preview", "thumbnail"}
    if link.include_inputs:
        allowed |= {"input", "input-preview"}
    return _shared_headers(_image_response(_stored_image(link.edit, kind, position, allowed)))


def _shared_headers(response: HttpResponse) -> HttpResponse:
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Cache-Control"] = "private, no-store"
    return response


def _status_context(edit: Edit) -> dict:
    inputs = list(edit.inputs.all()[:2])
    submissions = list(edit.submissions.prefetch_related("results"))
    reported: dict[str, str] = {}
    for submission in submissions:
        reported = {**submission.reported, **reported}
    model = edit.image_model
    rows = []
    if model.takes_size:
        rows.append(("Size", edit.size or "auto", reported.get("size", "")))
    for param in model.params:
        rows.append(
            (param.label, edit.params.get(param.name, "default"), reported.get(param.name, ""))
        )
    results = [result for submission in submissions for result in submission.results.all()]
    results.sort(key=lambda result: result.position)
    chosen = next((r for r in results if r.position == edit.chosen_position), None)
    return {
        "edit": edit,
        "submissions": submissions,
        "results": results,
        "chosen_result": chosen or (results[0] if results else None),
        "stage": _stage(edit, submissions),
        "stage_names": STAGES,
        # Seconds since the edit was made: the page counts on from here by itself.
        "elapsed": int((timezone.now() - edit.created_at).total_seconds()),
        "has_team": edit.owner.teams.exists(),
        "results_count": len(results),
        "reported_any": bool(reported),
        "failed_count": sum(s.status == Submission.Status.FAILED for s in submissions),
        "attempts": settings.UPSTREAM_ATTEMPTS,
        # Before and after compares a result with its one input; several inputs have no "before".
        "original": len(inputs) == 1 and bool(inputs[0].file),
        "parameter_rows": rows,
        # The share section comes along once the edit has ended (its first result makes links).
        "expiry_choices": sharing.EXPIRY_CHOICES,
    }


def _stage(edit: Edit, submissions: list[Submission]) -> str:
    """The furthest any request of an edit under way has come: queued, sent, retrying (a try
    failed and the next waits) or downloading; "" once the edit has ended."""
    if not edit.is_active:
        return ""
    stages = {submission.stage for submission in submissions}
    for stage in ("downloading", "retrying", "sent"):
        if stage in stages:
            return stage
    return "queued"


@csrf_exempt
@require_POST
def callback(request: HttpRequest, submission_id: int, secret: str) -> HttpResponse:
    """Where the upstream POSTs a request's result. Unknown request or wrong secret: 404.

    The body is only a hint that the task record is ready: a worker reads the record (and
    downloads the results) in check_submission, so this answers at once, 202."""
    submission = Submission.objects.filter(pk=submission_id).first()
    if submission is None or not submission.callback_secret_matches(secret):
        raise Http404
    # Read the stream directly: request.body stops at DATA_UPLOAD_MAX_MEMORY_SIZE, and a
    # result in base64 is larger than that.
    body = request.read(MAX_CALLBACK_BYTES + 1)
    if len(body) > MAX_CALLBACK_BYTES:
        return JsonResponse({"error": "The body is too large."}, status=413)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep to read
        return JsonResponse({"error": "The body is not JSON."}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"error": "The body is not a JSON object."}, status=400)
    submission.record_callback()
    if submission.is_active:
        pipeline.check_submission.enqueue(submission.pk, submission.task_id)
    return JsonResponse({"received": True}, status=202)
