"""The JSON API, /api/v1/: edits made, read, listed and downloaded, share links, and batches, for
scripts and integrations, with personal tokens (api_tokens.py).

Built with django-ninja: the pydantic schemas (api_schemas.py) check what comes in and make the
OpenAPI schema (/api/v1/schema/) that the docs page (/api/v1/docs/) shows. Every rule and limit
is the web form's: an edit is checked by EditForm and made by services.submit, the history is
filtered by GalleryFilter, links are made by sharing.create.

Only "Authorization: Bearer <token>" authenticates: a session cookie alone never does, so no
call can be forged from another site and the API needs no CSRF token. Every answer that is not
a success is {"error": {"code": ..., "message": ...}}.
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.datastructures import MultiValueDict
from ninja import Field, NinjaAPI, Path, Query, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer
from pydantic import ValidationError as SchemaError

from imageedits import logfilters

from . import api_tokens, batches, catalog, forms, services, sharing, storage, throttle, usage
from .api_schemas import (
    ERRORS,
    BatchIn,
    BatchOut,
    EditIn,
    EditOut,
    EditPageOut,
    ErrorOut,
    NewShareLinkOut,
    ShareLinkIn,
    ShareLinkOut,
    batch_detail,
    edit_detail,
    edit_summary,
    share_link,
)
from .batch_forms import BatchForm
from .gallery import PAGE_SIZE, GalleryFilter
from .models import Batch, Edit

logger = logging.getLogger(__name__)
# Ids beyond what the database holds are simply not found.
MAX_ID = 2**63 - 1


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        return api_tokens.owner_for(token)


api = NinjaAPI(
    title="imageedits API",
    version="1",
    description="Edit images with AI image-edit models: the same edits, rules and limits as "
    "the web app. Authenticate with a personal token (made on the web app's API tokens page) "
    "as `Authorization: Bearer <token>`.",
    urls_namespace="api-v1",
    openapi_url="/schema/",
    docs_url="/docs/",
    auth=TokenAuth(),
)


class ApiError(HttpError):
    """An error answer with its code, message and (for invalid input) the fields' problems."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        super().__init__(status, message)
        self.code, self.fields = code, fields


def _error(request, status: int, code: str, message: str, fields=None) -> HttpResponse:
    detail = {"code": code, "message": message, **({"fields": fields} if fields else {})}
    return api.create_response(request, {"error": detail}, status=status)


def _form_refused(form) -> ApiError:
    """A form's refusal as a 400: its first message, and every field's ("request" for the
    form as a whole)."""
    fields = {
        "request" if name == "__all__" else name: [error["message"] for error in errors]
        for name, errors in form.errors.get_json_data().items()
    }
    return ApiError(400, "invalid", next(iter(fields.values()))[0], fields)


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError) -> HttpResponse:
    response = _error(request, exc.status_code, exc.code, exc.message, exc.fields)
    if exc.status_code == 429 and (seconds := throttle.retry_after(request.auth)):
        response["Retry-After"] = str(seconds)
    return response


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc) -> HttpResponse:
    # Never echoes what was sent: a mistyped token is still most of a token.
    response = _error(
        request, 401, "unauthorized",
        "Send a valid, unrevoked API token as “Authorization: Bearer <token>”.",
    )  # fmt: skip
    response["WWW-Authenticate"] = "Bearer"
    return response


@api.exception_handler(Http404)
def _not_found(request, exc) -> HttpResponse:
    return _error(request, 404, "not_found", "No such thing among yours.")


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError) -> HttpResponse:
    fields: dict[str, list[str]] = {}
    for problem in exc.errors:
        # ("body", "edit", "prompt") -> "prompt"; ("query", "page") -> "page"
        loc = problem.get("loc", ())
        name = ".".join(str(part) for part in loc[2 if loc[:1] == ("body",) else 1 :]) or "request"
        fields.setdefault(name, []).append(problem.get("msg", "invalid"))
    name, messages = next(iter(fields.items()), ("request", ["Invalid request."]))
    return _error(request, 400, "invalid", f"{name}: {messages[0]}", fields)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, "error", str(exc))


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc) -> HttpResponse:
    return _error(request, 413, "too_large", "The request is too large.")


@api.exception_handler(Exception)
def _server_error(request, exc: Exception) -> HttpResponse:
    # Logged (through the redaction, and to Sentry) as Django logs an unhandled one; the caller
    # gets JSON and the id to quote, never the exception's text.
    logger.error("API error: %s %s", request.method, request.path, exc_info=exc)
    return _error(
        request, 500, "server_error",
        f"Something went wrong on our side (request {logfilters.request_id.get()}).",
    )  # fmt: skip


def _owned_edit(request: HttpRequest, edit_id: int) -> Edit:
    """The token owner's edit; anyone else's is a 404, never a 403."""
    return get_object_or_404(Edit, pk=edit_id, owner=request.auth)


EditId = Path(..., ge=1, le=MAX_ID, description="The edit's id.")

# --- Edits ---------------------------------------------------------------------------------


def _multipart_schema() -> dict:
    """The multipart form of a new edit: EditIn's fields as form fields, images as files."""
    schema = EditIn.model_json_schema()
    properties = {
        name: prop
        for name, prop in schema["properties"].items()
        if name not in ("params", "image_urls", "collection")
    }
    binary = {"type": "string", "format": "binary"}
    properties |= {
        "images": {"type": "array", "items": binary, "description": "The image files."},
        "image_urls": {"type": "array", "items": {"type": "string"},
                       "description": "Images by URL, besides the files."},
        "mask": {**binary, "description": "A PNG whose transparent pixels mark where to edit "
                 "the first image (models that take a mask)."},
        "keep_unmasked": {"type": "boolean", "description": "Put the first image's pixels "
                          "back outside the mask."},
        "collection": {"type": "integer"},
        **{name: {"type": "string", "description": f"{param.label} (models that take it)."}
           for name, param in forms.PARAMS.items()},
    }  # fmt: skip
    return {"type": "object", "required": ["prompt"], "properties": properties}


@api.post(
    "/edits/",
    url_name="edit-create",
    summary="Start an edit",
    response={
        201: EditOut,
        402: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        429: ErrorOut,
        **ERRORS,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": EditIn.model_json_schema()},
                "multipart/form-data": {"schema": _multipart_schema()},
            },
        }
    },
)
def create_edit(request: HttpRequest):
    """Start an edit: as JSON with image URLs, or as a multipart form with image files (and
    URLs). It is checked as the web form checks it and counts towards the same limits (edits
    per minute, edits under way: 429) and monthly budgets (402). Answers the new edit, queued;
    read it again until its status is `succeeded` or `failed`."""
    owner = request.auth
    limit = settings.EDIT_MAX_REQUEST_BYTES
    if problem := throttle.oversized_problem(request, limit, "This edit's images"):
        raise ApiError(413, "too_large", problem)
    if problem := throttle.edit_limit_problem(owner):  # before any image URL is fetched
        raise ApiError(429, "limit_reached", problem)
    data, files = _form_input(request)
    form = forms.EditForm(data, files, owner=owner)
    if not form.is_valid():
        raise _form_refused(form)
    try:
        edit = services.submit(owner, form.new_edit())
    except usage.BudgetExceeded as refusal:  # waiting would not help, unlike the limits
        raise ApiError(402, "budget_exceeded", str(refusal)) from refusal
    except throttle.LimitReached as refusal:  # reached while the form was being checked
        raise ApiError(429, "limit_reached", str(refusal)) from refusal
    return Status(201, edit_detail(request, edit))


def _form_input(request: HttpRequest) -> tuple[QueryDict, MultiValueDict]:
    """The request's fields and files as the web form takes them."""
    data = QueryDict(mutable=True)
    if request.content_type == "application/json":
        try:
            new = EditIn.model_validate_json(request.body)
        except SchemaError as error:
            problems = [{**e, "loc": ("body", "edit", *e["loc"])} for e in error.errors()]
            raise ValidationError(problems) from error
        unknown = sorted(set(new.params) - set(forms.PARAMS))
        if unknown:
            raise ApiError(
                400, "invalid", f"Unknown parameter “{unknown[0][:40]}”.",
                {"params": [f"Unknown parameter “{name[:40]}”." for name in unknown]},
            )  # fmt: skip
        data.update(new.params)
        data.update({
            "prompt": new.prompt, "model": new.model, "size": new.size,
            "candidates": str(new.candidates), "image_urls": "\n".join(new.image_urls),
            "collection": "" if new.collection is None else str(new.collection),
        })  # fmt: skip
        return data, MultiValueDict()
    if request.content_type == "multipart/form-data":
        try:
            fields, files = request.POST, request.FILES
        except RequestDataTooBig:
            raise  # 413, not 400
        except (MultiPartParserError, SuspiciousOperation) as error:  # too many fields or files
            raise ApiError(400, "invalid", f"The form cannot be read: {error}") from error
        for name in ("prompt", "model", "size", "candidates", "keep_unmasked", "collection",
                     *forms.PARAMS):  # fmt: skip
            if name in fields:
                data[name] = fields[name]
        data.setdefault("model", catalog.DEFAULT_MODEL)  # as in JSON
        data["image_urls"] = "\n".join(fields.getlist("image_urls"))
        return data, files
    raise ApiError(
        415, "unsupported_media_type", "Send the edit as application/json or multipart/form-data."
    )


@api.get(
    "/edits/{edit_id}/", url_name="edit", summary="Read an edit", response={200: EditOut, **ERRORS}
)
def read_edit(request: HttpRequest, edit_id: int = EditId):
    """The edit: its status, parameters, times, each upstream request, and its results with
    their download URLs."""
    return edit_detail(request, _owned_edit(request, edit_id))


class HistoryFilters(Schema):
    """The history page's filters (the same rules: GalleryFilter applies them)."""

    q: str | None = Field(None, description="Words of the instruction, all of them.")
    model: str | None = Field(None, json_schema_extra={"enum": list(catalog.MODELS)})
    status: str | None = Field(None, json_schema_extra={"enum": list(Edit.Status.values)})
    since: str | None = Field(None, description="Made on or after this day, YYYY-MM-DD.")
    until: str | None = Field(None, description="Made on or before this day, YYYY-MM-DD.")
    starred: bool | None = Field(None, description="Starred ones only.")
    collection: int | None = Field(None, description="The id of one of your collections.")
    page: int = Field(1, description=f"{PAGE_SIZE} edits a page.")


@api.get(
    "/edits/", url_name="edits", summary="List your edits", response={200: EditPageOut, **ERRORS}
)
def list_edits(request: HttpRequest, filters: Query[HistoryFilters]):
    """Your edits, newest first, filtered as on the history page: words of the instruction
    (`q`), `model`, `status`, dates (`since`, `until`, as YYYY-MM-DD), `starred`, `collection`;
    48 a page."""
    values = filters.dict(exclude_none=True)
    page_number = values.pop("page")
    if values.get("starred") is False:
        del values["starred"]
    gallery = GalleryFilter(values, owner=request.auth)
    if not gallery.is_valid():
        raise _form_refused(gallery)
    paginator = Paginator(gallery.apply(request.auth.edits.all()), PAGE_SIZE)
    if not 1 <= page_number <= paginator.num_pages:
        raise ApiError(404, "not_found", f"There are {paginator.num_pages} pages.")
    page = paginator.page(page_number)

    def page_url(number: int) -> str:
        query = request.GET.copy()
        query["page"] = str(number)
        return request.build_absolute_uri(f"{reverse('api-v1:edits')}?{query.urlencode()}")

    return {
        "count": paginator.count,
        "page": page.number,
        "pages": paginator.num_pages,
        "next": page_url(page.next_page_number()) if page.has_next() else None,
        "previous": page_url(page.previous_page_number()) if page.has_previous() else None,
        "edits": [edit_summary(request, edit) for edit in page],
    }


IMAGE_TYPES = {
    kind: {"schema": {"type": "string", "format": "binary"}}
    for kind in ("image/png", "image/jpeg", "image/webp")
}


@api.get(
    "/edits/{edit_id}/results/{position}/",
    url_name="result",
    summary="Download a result",
    response=ERRORS,
    openapi_extra={
        "responses": {
            200: {"description": "The result image, as a download.", "content": IMAGE_TYPES},
            302: {"description": "With images in a bucket: a URL signed for a few minutes."},
        }
    },
)
def download_result(
    request: HttpRequest,
    edit_id: int = EditId,
    position: int = Path(..., ge=0, le=MAX_ID, description="The result's position, from 0."),
):
    """One result image, as stored."""
    edit = _owned_edit(request, edit_id)
    result = get_object_or_404(edit.results, position=position)
    extension = result.file.name.rsplit(".", 1)[-1]
    response = storage.response(result.file, f"{edit.file_stem}-{position + 1}.{extension}")
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- Share links ---------------------------------------------------------------------------


@api.get(
    "/edits/{edit_id}/share-links/",
    url_name="share-links",
    summary="List an edit's share links",
    response={200: list[ShareLinkOut], **ERRORS},
)
def list_share_links(request: HttpRequest, edit_id: int = EditId):
    return [share_link(link) for link in _owned_edit(request, edit_id).share_links.all()]


@api.post(
    "/edits/{edit_id}/share-links/",
    url_name="share-link-create",
    summary="Make a share link",
    response={201: NewShareLinkOut, 409: ErrorOut, **ERRORS},
)
def create_share_link(request: HttpRequest, link: ShareLinkIn, edit_id: int = EditId):
    """A read-only link to the edit's results (and inputs, if asked) for anyone who has it.
    Its URL is in this answer only."""
    edit = _owned_edit(request, edit_id)
    if not edit.results.exists():
        raise ApiError(409, "no_results", "This edit has no result to share.")
    new, token = sharing.create(edit, link.include_inputs, link.expires_in_days)
    return Status(201, {**share_link(new), "url": sharing.url(request, token)})


@api.delete(
    "/edits/{edit_id}/share-links/{link_id}/",
    url_name="share-link",
    summary="Revoke a share link",
    response={204: None, **ERRORS},
)
def revoke_share_link(
    request: HttpRequest, edit_id: int = EditId, link_id: int = Path(..., ge=1, le=MAX_ID)
):
    """The link stops working at once (it stays listed, revoked)."""
    get_object_or_404(_owned_edit(request, edit_id).share_links, pk=link_id).revoke()
    return Status(204, None)


# --- Batches -------------------------------------------------------------------------------


def _batch_multipart_schema() -> dict:
    """The multipart form of a new batch: BatchIn's fields as form fields, images as files."""
    schema = BatchIn.model_json_schema()
    properties = {
        name: prop
        for name, prop in schema["properties"].items()
        if name not in ("params", "image_urls")
    }
    binary = {"type": "string", "format": "binary"}
    properties |= {
        "images": {"type": "array", "items": binary, "description": "Image files."},
        "archive": {**binary, "description": "A ZIP of images (folders inside are fine)."},
        "image_urls": {"type": "array", "items": {"type": "string"},
                       "description": "Images by URL, besides the files."},
        **{name: {"type": "string", "description": f"{param.label} (models that take it)."}
           for name, param in forms.PARAMS.items()},
    }  # fmt: skip
    return {"type": "object", "required": ["prompt"], "properties": properties}


@api.post(
    "/batches/",
    url_name="batch-create",
    summary="Start a batch",
    response={201: BatchOut, 402: ErrorOut, 413: ErrorOut, 415: ErrorOut, 429: ErrorOut, **ERRORS},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": BatchIn.model_json_schema()},
                "multipart/form-data": {"schema": _batch_multipart_schema()},
            },
        }
    },
)
def create_batch(request: HttpRequest):
    """One instruction, model and settings over many images (up to the batch limit), each its
    own edit: as JSON with image URLs, or as a multipart form with image files, a ZIP of images
    and URLs. Checked as the batch page checks it; the batch counts as one edit against the
    limits (429) and with its whole cost against the monthly budgets (402). The answer comes at
    once: its images are then read (decoded, or fetched from their URLs) one by one, `preparing`
    counting those still to read; an image that cannot be used fails its own edit, with the
    reason. Its edits run a few at a time; read the batch again until `finished`."""
    owner = request.auth
    limit = settings.BATCH_MAX_REQUEST_BYTES
    if problem := throttle.oversized_problem(request, limit, "This batch's files"):
        raise ApiError(413, "too_large", problem)
    if problem := throttle.edit_limit_problem(owner):  # before any image URL is fetched
        raise ApiError(429, "limit_reached", problem)
    data, files = _batch_input(request)
    form = BatchForm(data, files, owner=owner)
    if not form.is_valid():
        raise _form_refused(form)
    cleaned = form.cleaned_data
    try:
        sources = batches.collect_images(
            cleaned["images"], cleaned["archive"], cleaned["image_urls"]
        )
        wanted = batches.Settings(
            cleaned["prompt"], cleaned["model"], cleaned["size"], cleaned["params"],
            cleaned["candidates"],
        )  # fmt: skip
        batch = batches.start_batch(owner, wanted, sources)
    except batches.BatchRefused as refusal:
        raise ApiError(400, "invalid", str(refusal)) from refusal
    except usage.BudgetExceeded as refusal:
        raise ApiError(402, "budget_exceeded", str(refusal)) from refusal
    except throttle.LimitReached as refusal:
        raise ApiError(429, "limit_reached", str(refusal)) from refusal
    return Status(201, batch_detail(request, batch, batches.progress(batch)))


def _batch_input(request: HttpRequest) -> tuple[QueryDict, MultiValueDict]:
    """The request's fields and files as the batch page's form takes them."""
    if request.content_type == "application/json":
        try:
            new = BatchIn.model_validate_json(request.body)
        except SchemaError as error:
            problems = [{**e, "loc": ("body", "batch", *e["loc"])} for e in error.errors()]
            raise ValidationError(problems) from error
        unknown = sorted(set(new.params) - set(forms.PARAMS))
        if unknown:
            raise ApiError(400, "invalid", f"Unknown parameter “{unknown[0][:40]}”.")
        data = QueryDict(mutable=True)
        data.update(new.params)
        data.update({
            "prompt": new.prompt, "model": new.model, "size": new.size,
            "candidates": str(new.candidates), "image_urls": "\n".join(new.image_urls),
        })  # fmt: skip
        return data, MultiValueDict()
    if request.content_type == "multipart/form-data":
        return _form_input(request)  # the fields a batch shares with an edit, and the files
    raise ApiError(
        415, "unsupported_media_type", "Send the batch as application/json or multipart/form-data."
    )


@api.get(
    "/batches/{batch_id}/",
    url_name="batch",
    summary="Read a batch",
    response={200: BatchOut, **ERRORS},
)
def read_batch(
    request: HttpRequest, batch_id: int = Path(..., ge=1, le=MAX_ID, description="The id.")
):
    """A batch or comparison: how many of its edits are in each status, and each edit."""
    batch = get_object_or_404(Batch, pk=batch_id, owner=request.auth)
    return batch_detail(request, batch, batches.progress(batch))
