import json

from django.contrib.auth.decorators import login_required
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from . import catalog, images, services
from .forms import EditForm
from .models import Edit

# A callback carries at most a few result images as base64.
MAX_CALLBACK_BYTES = 200 * 1024 * 1024


def _get_edit_for_user(request: HttpRequest, edit_id: int) -> Edit:
    """The user's own edit; someone else's is a 404, never a 403."""
    return get_object_or_404(Edit, pk=edit_id, owner=request.user)


@login_required
def new(request: HttpRequest) -> HttpResponse:
    form = EditForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        edit = services.create_edit(request.user, form.new_edit())
        return redirect(edit)
    recent = request.user.edits.prefetch_related("results")[:8]
    context = {"form": form, "recent": recent, "size_options": _size_options()}
    return render(request, "edits/new.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def detail(request: HttpRequest, edit_id: int) -> HttpResponse:
    edit = _get_edit_for_user(request, edit_id)
    return render(request, "edits/detail.html", {"edit": edit})


@login_required
@require_GET
@never_cache
def status(request: HttpRequest, edit_id: int) -> HttpResponse:
    """The polled fragment; 286 tells htmx to stop polling once the edit has ended."""
    edit = _get_edit_for_user(request, edit_id)
    response = render(request, "edits/detail.html#status", {"edit": edit})
    if not edit.is_active:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@login_required
@require_GET
def image(request: HttpRequest, edit_id: int, kind: str, position: int) -> FileResponse:
    """A stored input, result or thumbnail, served to the edit's owner only."""
    edit = _get_edit_for_user(request, edit_id)
    if kind not in ("input", "result", "thumbnail"):
        raise Http404
    if kind == "input":
        item = get_object_or_404(edit.inputs, position=position, url="")
        stored = item.file
    else:
        item = get_object_or_404(edit.results, position=position)
        stored = item.thumbnail if kind == "thumbnail" else item.file
    response = FileResponse(stored.open("rb"), content_type=images.content_type_for(stored.name))
    if kind == "result" and request.GET.get("download"):
        extension = stored.name.rsplit(".", 1)[-1]
        response["Content-Disposition"] = (
            f'attachment; filename="edit-{edit.pk}-result-{position + 1}.{extension}"'
        )
    response["Cache-Control"] = "private, max-age=86400, immutable"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@csrf_exempt
@require_POST
def callback(request: HttpRequest, edit_id: int, secret: str) -> HttpResponse:
    """Where the upstream POSTs an edit's result. Unknown edit or wrong secret: 404."""
    edit = Edit.objects.filter(pk=edit_id).first()
    if edit is None or not edit.callback_secret_matches(secret):
        raise Http404
    # Read the stream directly: request.body stops at DATA_UPLOAD_MAX_MEMORY_SIZE, and a
    # result in base64 is larger than that.
    body = request.read(MAX_CALLBACK_BYTES + 1)
    if len(body) > MAX_CALLBACK_BYTES:
        return HttpResponse(status=413)
    try:
        payload = json.loads(body)
    except ValueError:
        return HttpResponseBadRequest("The body is not JSON.")
    if not isinstance(payload, dict):
        return HttpResponseBadRequest("The body is not a JSON object.")
    services.handle_callback(edit, payload)
    return JsonResponse({"received": True})


def _size_options() -> list[str]:
    sizes = ["auto"]
    for tiers in catalog.RECOMMENDED_SIZES.values():
        sizes.extend(tiers)
    for model in catalog.MODELS.values():
        sizes.extend(size for size in model.sizes or () if size not in sizes)
    return sizes
