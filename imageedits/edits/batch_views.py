"""Pages for batches (one instruction over many images) and comparisons (one image over
several models); the rules are in batches.py."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from . import batches, throttle, usage
from .batch_forms import BatchForm, CompareForm, model_prices
from .models import Batch


def _get_batch_for_user(request: HttpRequest, batch_id: int, kind: str) -> Batch:
    """The user's own batch or comparison; someone else's is a 404, never a 403."""
    return get_object_or_404(Batch, pk=batch_id, owner=request.user, kind=kind)


@login_required
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    groups = request.user.batches.annotate(edit_count=Count("edits"))[:50]
    return render(request, "batches/list.html", {"groups": groups})


@login_required
def batch_new(request: HttpRequest) -> HttpResponse:
    limit = settings.BATCH_MAX_REQUEST_BYTES
    if problem := throttle.oversized_problem(request, limit, "This batch's files"):
        form = BatchForm(owner=request.user)  # refused before the body is read
        form.add_error(None, problem)
        return _batch_form(request, form, status=413)
    form = BatchForm(request.POST or None, request.FILES or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            sources = batches.collect_images(data["images"], data["archive"], data["image_urls"])
            wanted = batches.Settings(
                data["prompt"], data["model"], data["size"], data["params"], data["candidates"]
            )
            return redirect(batches.start_batch(request.user, wanted, sources))
        except (batches.BatchRefused, throttle.LimitReached) as refusal:
            form.add_error(None, str(refusal))
    return _batch_form(request, form, status=400 if form.errors else 200)


def _batch_form(request: HttpRequest, form: BatchForm, status: int) -> HttpResponse:
    context = {
        "form": form,
        "prices": model_prices(),
        "max_images": settings.BATCH_MAX_IMAGES,
        "concurrency": settings.BATCH_CONCURRENCY,
        **form.model_context(),
    }
    return render(request, "batches/new.html", context, status=status)


@login_required
@require_GET
def batch_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _get_batch_for_user(request, batch_id, Batch.Kind.BATCH)
    return render(request, "batches/detail.html", _group_context(batch, "results"))


@login_required
@require_GET
@never_cache
def batch_status(request: HttpRequest, batch_id: int) -> HttpResponse:
    """The polled progress and tiles: 204 while nothing changed since the page's `seen`, 286
    (stop polling) once every edit has ended."""
    batch = _get_batch_for_user(request, batch_id, Batch.Kind.BATCH)
    return _poll(request, batch, "batches/detail.html#progress", _group_context(batch, "results"))


def _group_context(batch: Batch, *related: str) -> dict:
    """A batch's or comparison's page: its edits (with `related` fetched) and its progress."""
    edits = batch.edits.order_by("pk").prefetch_related(*related)
    first = edits.first()
    return {"batch": batch, "edits": edits, "first": first, "progress": batches.progress(batch)}


def _poll(request: HttpRequest, batch: Batch, template: str, context: dict) -> HttpResponse:
    progress = context["progress"]
    if request.GET.get("seen") == progress.signature and not progress.finished:
        return HttpResponse(status=204)
    response = render(request, template, context)
    if progress.finished:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@login_required
@require_POST
def batch_retry(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _get_batch_for_user(request, batch_id, Batch.Kind.BATCH)
    try:
        retried = batches.retry_failed(batch)
        messages.success(
            request, f"{retried} failed edit{'s' if retried != 1 else ''} queued again."
        )
    except throttle.LimitReached as refusal:
        messages.error(request, str(refusal))
    return redirect(batch)


@login_required
@require_POST
def batch_cancel(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _get_batch_for_user(request, batch_id, Batch.Kind.BATCH)
    cancelled = batches.cancel(batch)
    messages.success(request, f"{cancelled} edit{'s' if cancelled != 1 else ''} cancelled.")
    return redirect(batch)


@login_required
@require_GET
def batch_download(request: HttpRequest, batch_id: int) -> StreamingHttpResponse:
    batch = _get_batch_for_user(request, batch_id, Batch.Kind.BATCH)
    words = slugify(batch.prompt)[:40].rstrip("-")
    name = f"batch-{batch.pk}-{words}.zip" if words else f"batch-{batch.pk}.zip"
    response = StreamingHttpResponse(batches.results_zip(batch), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- Comparisons ---------------------------------------------------------------------------------


@login_required
def compare_new(request: HttpRequest) -> HttpResponse:
    if (
        request.method == "POST"
        and throttle.request_bytes(request) > settings.EDIT_MAX_REQUEST_BYTES
    ):
        form = CompareForm()
        form.add_error(
            None,
            f"The image is larger than {filesizeformat(settings.EDIT_MAX_REQUEST_BYTES)}.",
        )
        return _compare_form(request, form, status=413)
    form = CompareForm(request.POST or None, request.FILES or None)
    problems = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            named = batches.read_one(data["image"], data["image_url"])
            problems = batches.compare_problems(data["models"], data["prompt"], named)
            if not problems:
                batch = batches.start_compare(request.user, data["prompt"], data["models"], named)
                return redirect(batch)
        except (batches.BatchRefused, throttle.LimitReached) as refusal:
            form.add_error(None, str(refusal))
    failed = bool(form.errors or problems)
    return _compare_form(request, form, problems, status=400 if failed else 200)


def _compare_form(request, form: CompareForm, problems=(), status: int = 200) -> HttpResponse:
    context = {
        "form": form,
        "problems": problems,
        "budgets": usage.budgets_left(request.user),
        "prices": model_prices(),
    }
    return render(request, "batches/compare_new.html", context, status=status)


@login_required
@require_GET
def compare_detail(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _get_batch_for_user(request, batch_id, Batch.Kind.COMPARE)
    return render(request, "batches/compare.html", _group_context(batch, "results", "inputs"))


@login_required
@require_GET
@never_cache
def compare_status(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = _get_batch_for_user(request, batch_id, Batch.Kind.COMPARE)
    return _poll(
        request,
        batch,
        "batches/compare.html#side_by_side",
        _group_context(batch, "results", "inputs"),
    )


@login_required
@require_POST
def compare_choose(request: HttpRequest, batch_id: int, edit_id: int) -> HttpResponse:
    batch = _get_batch_for_user(request, batch_id, Batch.Kind.COMPARE)
    if not batches.choose(batch, edit_id):
        raise Http404
    messages.success(request, f"{batch.chosen_edit.model}'s result is the chosen one.")
    return redirect(batch)
