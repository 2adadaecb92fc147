from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from . import catalog, fetch, services, teams, upstream, usage
from .images import (
    EDIT_MAX_PIXELS,
    EncodedImage,
    InvalidImage,
    convert,
    header_size,
    mask_for,
    reencode,
)
from .models import Collection, Edit, InputImage, ResultImage

MAX_INPUTS = max(model.max_inputs for model in catalog.MODELS.values())
PARAMS = {param.name: param for model in catalog.MODELS.values() for param in model.params}
AUTO, CUSTOM = "auto", "custom"


class MultipleImageInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """Any number of uploaded files; each is checked in EditForm.clean_images."""

    def __init__(self, **kwargs):
        accept = "image/png,image/jpeg,image/webp"
        kwargs.setdefault("widget", MultipleImageInput(attrs={"accept": accept}))
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleImageField, self).clean(file, initial) for file in files]


def model_choices() -> list[tuple[str, str]]:
    offered = upstream.flavour()
    return [
        (model.name, model.name + (" (deprecated)" if model.deprecated else ""))
        for model in catalog.MODELS.values()
        if offered in model.flavours
    ]


def size_choices(model: catalog.ImageModel) -> list[tuple[str, str | dict[str, str]]]:
    """The size picker: auto, then the recommended sizes by aspect ratio and tier (or the
    model's fixed list), then a custom size where the model takes any."""
    if model.sizes is not None:
        return [
            (size, "auto (the model decides)" if size == AUTO else size) for size in model.sizes
        ]
    choices: list[tuple[str, str | dict[str, str]]] = [(AUTO, "auto (the model decides)")]
    for ratio, tiers in catalog.RECOMMENDED_SIZES.items():
        choices.append(
            (
                ratio,
                {
                    size: f"{tier} · {size}"
                    for tier, size in zip(("1K", "2K", "4K"), tiers, strict=True)
                },
            )
        )
    choices.append((CUSTOM, "Custom…"))
    return choices


def _default_size(model: catalog.ImageModel) -> str:
    if model.sizes is None or AUTO in model.sizes:
        return AUTO
    return model.sizes[-1] if model.sizes else ""


def _values(choices: list[tuple[str, str | dict[str, str]]]) -> list[str]:
    """Every selectable value of a choice list with groups."""
    values = []
    for value, label in choices:
        values.extend(label if isinstance(label, dict) else [value])
    return values


def _param_field(param: catalog.Param) -> forms.Field:
    """A field for an extra parameter. Its values are checked by catalog.param_errors, for the
    chosen model only, so a parameter the model does not take can never block a submission."""
    if param.number_range:
        low, high = param.number_range
        widget = forms.NumberInput(attrs={"min": low, "max": high})
    else:
        widget = forms.Select(choices=[("", "default"), *((v, v) for v in param.choices)])
    return forms.CharField(label=param.label, required=False, widget=widget, help_text=param.help)


def starting_values(query, owner) -> dict:
    """The form's first values for "edit this result" (?from_result=EDIT&position=N) and
    "reuse settings" (?reuse=EDIT), from the person's own edits or those their teammates share
    with them; empty for a blank form or an edit they cannot see."""
    visible = teams.visible_edits(owner)
    edit_id = id_or_none(query.get("from_result", ""))
    if edit_id is not None:
        result = (
            ResultImage.objects.filter(
                edit__in=visible,
                edit_id=edit_id,
                position=id_or_none(query.get("position", "")) or 0,
            )
            .select_related("edit")
            .first()
        )
        if result:
            return {"carry": [f"result-{edit_id}-{result.position}"], "model": result.edit.model}
    reuse = id_or_none(query.get("reuse", ""))
    edit = visible.filter(pk=reuse).first() if reuse is not None else None
    if edit is None:
        return {}
    size = edit.size or AUTO
    custom = size not in _values(size_choices(edit.image_model))
    inputs = list(edit.inputs.all())
    return {
        "reused_from": edit.pk,
        "prompt": edit.prompt,
        "model": edit.model,
        "size": CUSTOM if custom else size,
        "custom_size": edit.size if custom else "",
        "candidates": edit.candidates,
        **edit.params,
        "carry": [f"input-{edit.pk}-{item.position}" for item in inputs if item.file],
        "image_urls": "\n".join(item.url for item in inputs if item.url),
        "keep_unmasked": edit.keep_unmasked,
        # The mask painter starts from this edit's mask (shown to its owner only).
        "mask_url": reverse(teams.image_url_name(owner, edit), args=[edit.pk, "mask", 0])
        + "?stream=1"
        if edit.mask
        else "",
    }


def id_or_none(text: str) -> int | None:
    """A database id or position given as text, or None for anything else (a number too large
    for the database included)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def image_url_lines(data) -> list[str]:
    """The image URLs given, one per line."""
    return [line.strip() for line in (data.get("image_urls") or "").splitlines() if line.strip()]


def url_problem(url: str) -> str | None:
    """Why an image URL cannot be used, or None. Only the address is checked here, so that
    every bad URL is named at once; whether it gives an image is found out by fetching it."""
    try:
        forms.URLField(max_length=2000).clean(url)
    except forms.ValidationError:
        return f"“{url[:80]}” is not a valid web address."
    if urlsplit(url).scheme not in ("http", "https"):
        return f"“{url[:80]}” must start with http:// or https://."
    try:
        fetch.checked_address(url)
    except fetch.FetchRefused as error:
        return f"“{url[:80]}” cannot be used: {error}"
    return None


def fitted_input(model: catalog.ImageModel, image: EncodedImage, name: str) -> EncodedImage:
    """The image as `model` takes it (dall-e-2: one square PNG under 4 MB), converted where it
    needs another format; ValidationError, naming the image, if the model cannot take it."""
    if model.square_inputs and image.width != image.height:
        raise forms.ValidationError(
            f"{model.name} needs square images; “{name}” is {image.width}x{image.height}."
        )
    if model.input_format:
        image = convert(image, model.input_format)
    if image.size > model.max_input_bytes:
        raise forms.ValidationError(
            f"{model.name} takes images of at most {filesizeformat(model.max_input_bytes)}; "
            f"“{name}” is {filesizeformat(image.size)} as {image.format}."
        )
    return image


class EditForm(forms.Form):
    images = MultipleImageField(label="Images", required=False)
    image_urls = forms.CharField(
        label="Image URLs",
        required=False,
        help_text="One per line.",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "https://example.com/photo.png"}),
    )
    # Stored images that come along: "result-<edit>-<position>" or "input-<edit>-<position>".
    carry = forms.Field(required=False, widget=forms.MultipleHiddenInput)
    # "Reuse settings": the edit whose settings these are, recorded as the new edit's parent.
    reused_from = forms.CharField(required=False, max_length=20, widget=forms.HiddenInput)
    mask = forms.FileField(label="Mask", required=False)
    keep_unmasked = forms.BooleanField(
        label="Keep everything outside the mask exactly", required=False
    )
    prompt = forms.CharField(
        label="Instruction",
        max_length=32_000,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "Convert this to dark mode, keep the layout"}
        ),
    )
    model = forms.ChoiceField(label="Model", choices=model_choices, initial=catalog.DEFAULT_MODEL)
    # No length limits here: the size rule judges these, and only for models that take a size.
    size = forms.CharField(label="Size", required=False)
    custom_size = forms.CharField(label="Custom size", required=False)
    candidates = forms.IntegerField(
        label="How many results",
        required=False,
        min_value=1,
        max_value=catalog.MAX_CANDIDATES,
        initial=1,
    )

    collection = forms.ModelChoiceField(
        label="Collection",
        required=False,
        queryset=Collection.objects.none(),
        empty_label="None",
    )

    def __init__(self, *args, owner=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        self._too_many_inputs = False
        self._pixels_left = EDIT_MAX_PIXELS
        if owner is not None:
            self.fields["collection"].queryset = owner.collections.all()
        for name, param in PARAMS.items():
            self.fields[name] = _param_field(param)
        # Any value is offered; clean_carry keeps only the owner's own images.
        self.fields["carry"].choices = (
            [(v, v) for v in self.data.getlist("carry")]
            if (self.is_bound and hasattr(self.data, "getlist"))
            else []
        )

    # --- What the page shows for the chosen model (also while nothing is submitted yet) ------

    @property
    def image_model(self) -> catalog.ImageModel:
        return catalog.MODELS.get(self._raw("model"), catalog.MODELS[catalog.DEFAULT_MODEL])

    def model_context(self) -> dict:
        model = self.image_model
        candidates = self._raw_candidates()
        typed = self._raw("candidates")
        number = id_or_none(typed)
        in_range = typed == "" or (number is not None and 1 <= number <= catalog.MAX_CANDIDATES)
        choices = size_choices(model)
        size_value = self._raw("size")
        if size_value not in _values(choices):  # e.g. the previous model's size
            size_value = _default_size(model)
        custom_size = self._raw("custom_size")
        price = services.unit_price(model.name)
        return {
            "model": model,
            "size_choices": choices,
            "size_value": size_value,
            "custom_size": custom_size,
            "size_problem": catalog.size_error(model, custom_size) if custom_size else None,
            "candidates": candidates,
            "candidates_typed": typed or candidates,
            "candidates_problem": None
            if in_range
            else f"How many results: choose from 1 to {catalog.MAX_CANDIDATES}.",
            "max_candidates": catalog.MAX_CANDIDATES,
            "param_fields": [self[param.name] for param in model.params],
            "ignored": self._ignored(model),
            "unit_price": price,
            "total_price": None if price is None else price * candidates,
            "budgets": usage.budgets_left(self.owner) if self.owner else [],
        }

    def carried_previews(self) -> list[dict[str, str]]:
        """The stored images carried over, as the preview strip shows them (a teammate's
        through the team's image view)."""
        tokens = self.data.getlist("carry") if self.is_bound else self.initial.get("carry", [])
        parsed = []
        for token in tokens:
            kind, _, rest = token.partition("-")
            edit_id, _, position = (id_or_none(part) for part in rest.partition("-"))
            if kind in ("result", "input") and edit_id is not None and position is not None:
                parsed.append((token, kind, edit_id, position))
        own = set(
            Edit.objects.filter(owner=self.owner, pk__in=[item[2] for item in parsed])
            .values_list("pk", flat=True)
        ) if self.owner else set()  # fmt: skip
        return [
            {
                "token": token,
                "url": reverse(
                    "edit-image" if edit_id in own else "team-image",
                    args=[edit_id, kind, position],
                ),
                "label": f"{kind} {position + 1} of edit {edit_id}",
            }
            for token, kind, edit_id, position in parsed
        ]

    def _raw(self, name: str) -> str:
        """A value as submitted, or as given in `initial` to show the fields for it."""
        values = self.data if self.is_bound else self.initial
        return str(values.get(name, "")).strip()

    def _raw_candidates(self) -> int:
        try:
            return min(max(int(self._raw("candidates")), 1), catalog.MAX_CANDIDATES)
        except ValueError:
            return 1

    @staticmethod
    def _ignored(model: catalog.ImageModel) -> list[str]:
        if model.takes_only_model_prompt_image:
            return ["size", "masks", "and every other parameter"]
        return [] if model.takes_mask else ["masks"]

    # --- Validation -------------------------------------------------------------------------

    def clean_candidates(self) -> int:
        return self.cleaned_data["candidates"] or 1

    def clean_carry(self) -> list[tuple[str, EncodedImage, Edit | None]]:
        """(label, image, parent edit if it is a result) for each stored image carried over."""
        if self._too_many_inputs:
            return []  # said once, under Images; nothing is read
        carried = []
        for token in self.cleaned_data["carry"] or []:
            kind, _, rest = token.partition("-")
            edit_id, _, position = (id_or_none(part) for part in rest.partition("-"))
            if kind not in ("result", "input") or edit_id is None or position is None:
                raise forms.ValidationError("An image carried over from another edit is unknown.")
            items = ResultImage.objects if kind == "result" else InputImage.objects
            item = (
                items.filter(
                    edit__in=teams.visible_edits(self.owner), edit_id=edit_id, position=position
                )
                .exclude(file="")
                .select_related("edit")
                .first()
            )
            if item is None:
                raise forms.ValidationError("An image carried over from another edit is gone.")
            label = f"{kind} {position + 1} of edit {edit_id}"
            carried.append(
                (label, services.stored_image(item.file), item.edit if kind == "result" else None)
            )
        return carried

    def _reused_edit(self, text: str | None) -> Edit | None:
        """The edit "Reuse settings" started from, if the person may still see it; one they no
        longer may (or a made-up id) is simply not recorded."""
        edit_id = id_or_none(text or "")
        if edit_id is None or self.owner is None:
            return None
        return teams.visible_edits(self.owner).filter(pk=edit_id).first()

    def clean_prompt(self) -> str:
        return self.cleaned_data["prompt"].strip()

    def clean_images(self) -> list[EncodedImage]:
        """Counted first (with the URLs and carried images), then sized from their headers,
        and only then decoded, each within what is left of the edit's pixel budget."""
        uploads = self.cleaned_data["images"]
        given = len(uploads) + len(self["carry"].data or []) + len(image_url_lines(self.data))
        if given > MAX_INPUTS:
            self._too_many_inputs = True
            raise forms.ValidationError(
                f"At most {MAX_INPUTS} images can go into one edit; you gave {given}."
            )
        for upload in uploads:
            if upload.size > settings.EDIT_MAX_UPLOAD_BYTES:
                raise forms.ValidationError(
                    f"“{upload.name}” is {filesizeformat(upload.size)}; the limit is "
                    f"{filesizeformat(settings.EDIT_MAX_UPLOAD_BYTES)} per image."
                )
        sizes = [header_size(upload.file) or (0, 0) for upload in uploads]
        pixels = sum(width * height for width, height in sizes)
        if pixels > EDIT_MAX_PIXELS:
            raise forms.ValidationError(
                f"These images have {pixels / 1_000_000:.0f} megapixels in all; one edit takes "
                f"at most {EDIT_MAX_PIXELS // 1_000_000}. Send fewer or smaller ones."
            )
        accepted = []
        for upload in uploads:
            try:
                image = reencode(upload.file, max_pixels=self._pixels_left)
            except InvalidImage as error:
                raise forms.ValidationError(f"“{upload.name}” cannot be used: {error}") from error
            self._pixels_left -= image.width * image.height
            accepted.append(image)
        return accepted

    def clean_image_urls(self) -> list[str]:
        if self._too_many_inputs:
            return []  # said once, under Images; no address is looked up
        urls = image_url_lines(self.cleaned_data)
        problems = [problem for url in urls if (problem := url_problem(url))]
        if problems:  # all of them at once, not one per submission
            raise forms.ValidationError(problems)
        return urls

    def clean(self):
        cleaned = super().clean()
        model = catalog.MODELS.get(cleaned.get("model", ""))
        if model is None:
            return cleaned
        uploads, urls = cleaned.get("images"), cleaned.get("image_urls")
        carried = cleaned.get("carry") or []
        self._input_names = [label for label, _, _ in carried] + [
            upload.name for upload in self.files.getlist("images")
        ]
        if uploads is not None:
            uploads = cleaned["images"] = [image for _, image, _ in carried] + uploads
        cleaned["parent"] = next((edit for _, _, edit in carried if edit), None) or (
            self._reused_edit(cleaned.get("reused_from"))
        )
        if uploads is not None and urls is not None:
            count = len(uploads) + len(urls)
            if count == 0:
                self.add_error("images", "Add at least one image: upload a file or give its URL.")
            elif count > model.max_inputs:
                self.add_error(
                    "images",
                    f"{model.name} takes at most {model.max_inputs} "
                    f"image{'s' if model.max_inputs > 1 else ''}; you gave {count}.",
                )
            elif urls:  # counted first: nothing is fetched for a form refused anyway
                self._fetch_urls(model, uploads, urls, bool(cleaned.get("mask")))
        if uploads and "images" in self.cleaned_data:
            self._check_inputs_for(model, uploads)
        self._clean_size(model, cleaned)
        self._clean_params(model, cleaned)
        self._clean_mask(model, cleaned)
        prompt = cleaned.get("prompt", "")
        if len(prompt) > model.max_prompt_chars:
            self.add_error(
                "prompt",
                f"{model.name} takes instructions of at most {model.max_prompt_chars:,} "
                f"characters; this one has {len(prompt):,}.",
            )
        return cleaned

    def _fetch_urls(
        self, model: catalog.ImageModel, uploads: list[EncodedImage], urls: list[str], mask: bool
    ) -> None:
        """Fetch each image URL once, now: one that gives no image is said here, not after
        four paid tries upstream. Where the upstream takes the URLs as they are, they go as
        URLs; otherwise their images join the uploads (and meet the model's rules here)."""
        fetched = []
        budget = fetch.Budget(pixels_left=self._pixels_left)
        for url in urls:
            try:
                fetched.append(fetch.fetch_image(url, budget))
            except fetch.FetchRefused as error:
                self.add_error("image_urls", f"“{url[:80]}” cannot be used: {error}")
        if len(fetched) < len(urls):
            return
        if not upstream.urls_pass_through(model.name, bool(uploads), mask and model.takes_mask):
            uploads.extend(fetched)
            self._input_names.extend(url[:80] for url in urls)
            self.cleaned_data["image_urls"] = []

    def _clean_size(self, model: catalog.ImageModel, cleaned: dict) -> None:
        if not model.takes_size:
            cleaned["size"] = ""
            return
        size = (cleaned.get("size") or "").strip().lower()
        if size == CUSTOM:
            size = (cleaned.get("custom_size") or "").strip().lower().replace(" ", "")
            if not size:
                self.add_error(
                    "custom_size", "Enter a custom size as WIDTHxHEIGHT, like 1600x1200."
                )
                return
        if size == AUTO:
            size = ""
        if problem := catalog.size_error(model, size):
            self.add_error("custom_size" if cleaned.get("size") == CUSTOM else "size", problem)
        cleaned["size"] = size

    def _clean_params(self, model: catalog.ImageModel, cleaned: dict) -> None:
        given = {name: (cleaned.get(name) or "").strip() for name in PARAMS}
        params = catalog.params_for(model, given)
        for name, problem in catalog.param_errors(model, params).items():
            self.add_error(name, problem)
        cleaned["params"] = params

    def _clean_mask(self, model: catalog.ImageModel, cleaned: dict) -> None:
        upload = cleaned.get("mask")
        cleaned["mask"] = None
        if not upload or not model.takes_mask:
            return  # a model without masks never gets one
        uploads = cleaned.get("images") or []
        if not uploads:
            return  # no usable image at all: that has its own message
        first = uploads[0]
        try:
            cleaned["mask"] = mask_for(upload.read(), (first.width, first.height))
        except InvalidImage as error:
            self.add_error("mask", str(error))

    def _check_inputs_for(self, model: catalog.ImageModel, uploads: list[EncodedImage]) -> None:
        """Per-model input rules (dall-e-2: one square PNG under 4 MB); converts as needed."""
        names = self._input_names
        for index, image in enumerate(uploads):
            name = names[index] if index < len(names) else f"image {index + 1}"
            try:
                uploads[index] = fitted_input(model, image, name)
            except forms.ValidationError as error:
                self.add_error("images", error)
                return

    def new_edit(self) -> services.NewEdit:
        data = self.cleaned_data
        return services.NewEdit(
            prompt=data["prompt"],
            model=data["model"],
            size=data["size"],
            uploads=data["images"],
            urls=data["image_urls"],
            params=data["params"],
            candidates=data["candidates"],
            mask=data["mask"],
            keep_unmasked=data["keep_unmasked"],
            parent=data["parent"],
            collection=data["collection"],
        )
