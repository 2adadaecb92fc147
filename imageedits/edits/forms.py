from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from . import catalog, upstream
from .images import EncodedImage, InvalidImage, reencode
from .services import NewEdit


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
        accepted = []
        for upload in self.cleaned_data["images"]:
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

    def new_edit(self) -> NewEdit:
        data = self.cleaned_data
        return NewEdit(
            prompt=data["prompt"],
            model=data["model"],
            size=data["size"],
            uploads=data["images"],
            urls=data["image_urls"],
        )
