"""What the JSON API takes and answers (pydantic schemas, which also make its OpenAPI schema),
and how an edit or a share link is turned into an answer.

The schemas check types only: the rules of an edit (models, sizes, parameters, how many images)
are the web form's, applied by EditForm; the limits in the schema's text are read from the same
places the form reads them."""

from datetime import datetime
from typing import Literal

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Schema
from pydantic import ConfigDict

from . import catalog, forms, sharing
from .models import Batch, Edit, ShareLink


class Problem(Schema):
    code: str = Field(description="What went wrong, for programs: e.g. `invalid`, `not_found`.")
    message: str = Field(description="What went wrong, in plain words, for people.")


class ErrorDetail(Problem):
    fields: dict[str, list[str]] | None = Field(
        None, description="With `invalid`: the problems of each field, by field name."
    )


class ErrorOut(Schema):
    error: ErrorDetail


# Every documented error answer of the API has this one shape.
ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut}


class EditIn(Schema):
    """A new edit, as JSON: its images are given by URL."""

    # A misplaced field ("quality" beside "params", say) is said, not silently dropped.
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="The instruction.", examples=["make it black and white"])
    model: str = Field(
        catalog.DEFAULT_MODEL,
        description="The model.",
        json_schema_extra={"enum": list(catalog.MODELS)},
    )
    image_urls: list[str] = Field(
        description=f"The images, by http(s) URL; at most {forms.MAX_INPUTS}, and at most what "
        "the model takes.",
        examples=[["https://example.com/photo.png"]],
    )
    size: str = Field(
        "",
        description="WIDTHxHEIGHT, or empty (or `auto`) for the model's choice, within the "
        "model's size rule.",
    )
    candidates: int = Field(
        1,
        description="How many results.",
        json_schema_extra={"minimum": 1, "maximum": catalog.MAX_CANDIDATES},
    )
    params: dict[str, str] = Field(
        default_factory=dict,
        description="The model's extra parameters, by name: "
        + ", ".join(f"`{name}`" for name in forms.PARAMS)
        + ". A model ignores those it does not take.",
    )
    collection: int | None = Field(None, description="The id of one of your collections.")


# The share form's choices of days until a link stops working.
EXPIRY_DAYS = Literal[tuple(int(days) for days, _ in sharing.EXPIRY_CHOICES if days)]


class ShareLinkIn(Schema):
    model_config = ConfigDict(extra="forbid")

    include_inputs: bool = Field(False, description="Show the edit's inputs too.")
    expires_in_days: EXPIRY_DAYS | None = Field(
        None, description="Days until the link stops working; null: until revoked."
    )


class InputOut(Schema):
    position: int
    source_url: str | None = Field(description="The URL the image was given by, if it was.")
    width: int | None
    height: int | None


class ResultOut(Schema):
    position: int
    width: int
    height: int
    revised_prompt: str
    download_url: str


class RequestOut(Schema):
    """One request to the upstream: one per result, or one for all of them (dall-e-2)."""

    index: int
    status: str
    tries: int
    started_at: datetime | None
    finished_at: datetime | None
    upstream_seconds: float | None = Field(description="The upstream's own timing, if it says.")
    reported: dict[str, str | int | float | bool | None] = Field(
        description="What the upstream says it used (size, quality...), if it says."
    )
    task_id: str
    trace_id: str
    error: Problem | None = Field(description="Why it failed, or why it is being tried again.")


class EditSummaryOut(Schema):
    id: int
    status: Literal[tuple(Edit.Status.values)]
    prompt: str
    model: str
    size: str = Field(description="Empty: the model decided.")
    candidates: int
    credits: float | None = Field(description="What it cost, when the model's price is known.")
    starred: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    api_url: str
    web_url: str


class EditOut(EditSummaryOut):
    params: dict[str, str]
    keep_unmasked: bool
    parent_id: int | None = Field(description="The edit whose result this edit started from.")
    waited_seconds: float | None = Field(description="In the queue before a worker took it.")
    duration_seconds: float | None = Field(description="From a worker taking it to its end.")
    error: Problem | None = Field(description="Why it failed, if it did.")
    inputs: list[InputOut]
    results: list[ResultOut]
    requests: list[RequestOut]


class EditPageOut(Schema):
    count: int = Field(description="Edits that pass the filters, on all pages.")
    page: int
    pages: int
    next: str | None
    previous: str | None
    edits: list[EditSummaryOut]


class ShareLinkOut(Schema):
    id: int
    token_end: str = Field(description="The token's last characters, to tell links apart.")
    include_inputs: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    active: bool
    views: int


class NewShareLinkOut(ShareLinkOut):
    url: str = Field(description="The link. Shown only now: only its hash is kept.")


def _error(code: str, message: str) -> dict | None:
    return {"code": code, "message": message} if code or message else None


def edit_summary(request: HttpRequest, edit: Edit) -> dict:
    return {
        "id": edit.pk,
        "status": edit.status,
        "prompt": edit.prompt,
        "model": edit.model,
        "size": edit.size,
        "candidates": edit.candidates,
        "credits": None if edit.credits is None else float(edit.credits),
        "starred": edit.starred,
        "created_at": edit.created_at,
        "started_at": edit.started_at,
        "finished_at": edit.finished_at,
        "api_url": request.build_absolute_uri(reverse("api-v1:edit", args=[edit.pk])),
        "web_url": request.build_absolute_uri(edit.get_absolute_url()),
    }


def edit_detail(request: HttpRequest, edit: Edit) -> dict:
    def download_url(position: int) -> str:
        return request.build_absolute_uri(reverse("api-v1:result", args=[edit.pk, position]))

    return {
        **edit_summary(request, edit),
        "params": edit.params,
        "keep_unmasked": edit.keep_unmasked,
        "parent_id": edit.parent_id,
        "waited_seconds": edit.waited,
        "duration_seconds": edit.duration,
        "error": _error(edit.error_code, edit.error_message),
        "inputs": [
            {
                "position": item.position,
                "source_url": item.url or None,
                "width": item.width,
                "height": item.height,
            }
            for item in edit.inputs.all()
        ],
        "results": [
            {
                "position": result.position,
                "width": result.width,
                "height": result.height,
                "revised_prompt": result.revised_prompt,
                "download_url": download_url(result.position),
            }
            for result in edit.results.all()
        ],
        "requests": [
            {
                "index": sub.index,
                "status": sub.status,
                "tries": sub.tries,
                "started_at": sub.started_at,
                "finished_at": sub.finished_at,
                "upstream_seconds": sub.elapsed,
                "reported": sub.reported,
                "task_id": sub.task_id,
                "trace_id": sub.trace_id,
                "error": _error(sub.error_code, sub.error_message),
            }
            for sub in edit.submissions.all()
        ],
    }


def share_link(link: ShareLink) -> dict:
    return {
        "id": link.pk,
        "token_end": link.token_end,
        "include_inputs": link.include_inputs,
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "revoked_at": link.revoked_at,
        "active": link.is_active,
        "views": link.views,
    }


# --- Batches -----------------------------------------------------------------------------------


class BatchIn(Schema):
    """A new batch, as JSON: one instruction, model and settings over many images by URL."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(description="The instruction for every image.", examples=["make it sepia"])
    model: str = Field(
        catalog.DEFAULT_MODEL,
        description="The model.",
        json_schema_extra={"enum": list(catalog.MODELS)},
    )
    image_urls: list[str] = Field(
        description="The images, by http(s) URL: each becomes an edit of its own.",
        examples=[["https://example.com/one.png", "https://example.com/two.png"]],
        json_schema_extra={"minItems": 1, "maxItems": settings.BATCH_MAX_IMAGES},
    )
    size: str = Field("", description="As for an edit.")
    candidates: int = Field(
        1,
        description="How many results for each image.",
        json_schema_extra={"minimum": 1, "maximum": catalog.MAX_CANDIDATES},
    )
    params: dict[str, str] = Field(
        default_factory=dict, description="The model's extra parameters, as for an edit."
    )


class BatchCountsOut(Schema):
    queued: int
    running: int
    succeeded: int
    failed: int
    cancelled: int


class BatchOut(Schema):
    id: int
    kind: Literal[tuple(Batch.Kind.values)] = Field(
        description="`batch`: one instruction over many images; `compare`: one image over "
        "several models."
    )
    prompt: str
    created_at: datetime
    total: int = Field(description="Its edits.")
    done: int = Field(description="Its edits that have ended (succeeded, failed or cancelled).")
    finished: bool = Field(description="Whether every edit has ended.")
    preparing: int = Field(
        description="Its images still being read (decoded, or fetched from their URLs); their "
        "edits are queued meanwhile. An image that cannot be used fails its edit."
    )
    counts: BatchCountsOut = Field(description="Its edits by status.")
    credits: float | None = Field(description="What its edits cost, when the prices are known.")
    web_url: str
    edits: list[EditSummaryOut]


def batch_detail(request: HttpRequest, batch: Batch, progress) -> dict:
    edits = list(batch.edits.order_by("pk"))
    prices = [edit.credits for edit in edits]
    return {
        "id": batch.pk,
        "kind": batch.kind,
        "prompt": batch.prompt,
        "created_at": batch.created_at,
        "total": progress.total,
        "done": progress.done,
        "finished": progress.finished,
        "preparing": progress.preparing,
        "counts": {status: progress.counts.get(status, 0) for status in Edit.Status.values},
        "credits": None if None in prices else float(sum(prices)),
        "web_url": request.build_absolute_uri(batch.get_absolute_url()),
        "edits": [edit_summary(request, edit) for edit in edits],
    }
