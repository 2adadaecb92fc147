from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from . import catalog, upstream
from .images import EncodedImage, InvalidImage, convert, reencode
from .services import NewEdit

MAX_INPUTS = max(model.max_inputs for model in catalog.MODELS.values())


class MultipleImageInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """Any number of uploaded files; each is checked in EditForm.clean_images."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "widget", MultipleImageInput(attrs={"accept": "image/png,image/jpeg,image/webp"})
        )
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleImageField, self).clean(file, initial) for file in files]


def model_choices() -> list[tuple[str, str]]:
    offered = upstream.flavour()
    choices = []
    for model in catalog.MODELS.values():
        if offered in model.flavours:
            label = model.name + (" (deprecated)" if model.deprecated else "")
            choices.append((model.name, label))
    return choices


class EditForm(forms.Form):
    prompt = forms.CharField(
        label="Instruction",
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "Convert this to dark mode, keep the layout"}
        ),
        max_length=32_000,
    )
    model = forms.ChoiceField(label="Model", choices=model_choices, initial=catalog.DEFAULT_MODEL)
    size = forms.CharField(
        label="Size",
        required=False,
        max_length=11,
        help_text="auto, or WIDTHxHEIGHT such as 1024x1536. nano-banana models ignore it.",
        widget=forms.TextInput(attrs={"list": "size-options", "placeholder": "auto"}),
    )
    images = MultipleImageField(label="Images", required=False)
    image_urls = forms.CharField(
        label="Image URLs",
        required=False,
        help_text="One per line.",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "https://example.com/photo.png"}),
    )

    def clean_prompt(self) -> str:
        return self.cleaned_data["prompt"].strip()

    def clean_size(self) -> str:
        size = self.cleaned_data["size"].strip().lower().replace(" ", "")
        return "" if size == "auto" else size

    def clean_images(self) -> list[EncodedImage]:
        uploads = self.cleaned_data["images"]
        if len(uploads) > MAX_INPUTS:  # before decoding any of them
            raise forms.ValidationError(
                f"At most {MAX_INPUTS} images can go into one edit; you gave {len(uploads)}."
            )
        accepted = []
        for upload in uploads:
            if upload.size > settings.EDIT_MAX_UPLOAD_BYTES:
                raise forms.ValidationError(
                    f"“{upload.name}” is {filesizeformat(upload.size)}; the limit is "
                    f"{filesizeformat(settings.EDIT_MAX_UPLOAD_BYTES)} per image."
                )
            try:
                accepted.append(reencode(upload.file))
            except InvalidImage as error:
                raise forms.ValidationError(f"“{upload.name}” cannot be used: {error}") from error
        return accepted

    def clean_image_urls(self) -> list[str]:
        urls = [
            line.strip() for line in self.cleaned_data["image_urls"].splitlines() if line.strip()
        ]
        validate = forms.URLField(max_length=2000).clean
        for url in urls:
            try:
                validate(url)
            except forms.ValidationError as error:
                raise forms.ValidationError(f"“{url[:80]}” is not a valid web address.") from error
            if urlsplit(url).scheme not in ("http", "https"):
                raise forms.ValidationError(f"“{url[:80]}” must start with http:// or https://.")
        return urls

    def clean(self):
        cleaned = super().clean()
        model = catalog.MODELS.get(cleaned.get("model", ""))
        if model is None:
            return cleaned
        uploads, urls = cleaned.get("images"), cleaned.get("image_urls")
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
        if uploads and "images" in self.cleaned_data:
            self._check_inputs_for(model, uploads)
        if not model.takes_size:
            cleaned["size"] = ""
        elif "size" in cleaned and (problem := catalog.size_error(model, cleaned["size"])):
            self.add_error("size", problem)
        prompt = cleaned.get("prompt", "")
        if len(prompt) > model.max_prompt_chars:
            self.add_error(
                "prompt",
                f"{model.name} takes instructions of at most {model.max_prompt_chars:,} "
                f"characters; this one has {len(prompt):,}.",
            )
        return cleaned

    def _check_inputs_for(self, model: catalog.ImageModel, uploads: list[EncodedImage]) -> None:
        """Per-model input rules (dall-e-2: one square PNG under 4 MB); converts as needed."""
        names = [upload.name for upload in self.files.getlist("images")]
        for index, image in enumerate(uploads):
            name = names[index] if index < len(names) else f"image {index + 1}"
            if model.square_inputs and image.width != image.height:
                self.add_error(
                    "images",
                    f"{model.name} needs square images; “{name}” is {image.width}x{image.height}.",
                )
                return
            if model.input_format:
                image = uploads[index] = convert(image, model.input_format)
            if len(image.content) > model.max_input_bytes:
                self.add_error(
                    "images",
                    f"{model.name} takes images of at most "
                    f"{filesizeformat(model.max_input_bytes)}; “{name}” is "
                    f"{filesizeformat(len(image.content))} as {image.format}.",
                )
                return

    def new_edit(self) -> NewEdit:
        data = self.cleaned_data
        return NewEdit(
            prompt=data["prompt"],
            model=data["model"],
            size=data["size"],
            uploads=data["images"],
            urls=data["image_urls"],
        )
