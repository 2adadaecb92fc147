"""The forms that start a batch and a comparison. They check what they are given, with the
new-edit form's own rules (size, parameters, URLs, instruction length); counting and sizing the
images is batches.collect_images's, after the form is valid, and decoding and fetching them
batches.prepare_image's, after the request."""

from django import forms
from django.conf import settings

from . import catalog, services
from .forms import EditForm, MultipleImageField, image_url_lines, model_choices, url_problem


def model_prices() -> dict[str, str]:
    """Each model's credits per result ("" if it has no price), for the cost a batch or a
    comparison shows while its form is filled in."""
    prices = {}
    for name, _ in model_choices():
        price = services.unit_price(name)
        prices[name] = "" if price is None else str(price)
    return prices


class BatchForm(EditForm):
    """One instruction, model, size and parameters for every image of the batch."""

    images = MultipleImageField(
        label="Images", required=False, help_text="Choose files, or drop files or a folder here."
    )
    archive = forms.FileField(label="ZIP of images", required=False)
    image_urls = forms.CharField(
        label="Image URLs",
        required=False,
        help_text="One per line.",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "https://example.com/photo.png"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # One image an edit, no mask or stored images: what the new-edit form adds is not here.
        for name in ("carry", "mask", "keep_unmasked", "collection"):
            del self.fields[name]
        self.fields["archive"].widget.attrs["accept"] = ".zip,application/zip"

    def clean_images(self) -> list:
        return self.cleaned_data["images"]  # counted and sized by the batch, decoded later

    def clean_image_urls(self) -> list[str]:
        urls = image_url_lines(self.cleaned_data)
        if len(urls) > settings.BATCH_MAX_IMAGES:
            raise forms.ValidationError(
                f"A batch holds at most {settings.BATCH_MAX_IMAGES} images; you gave {len(urls)}."
            )
        problems = [problem for url in urls if (problem := url_problem(url))]
        if problems:
            raise forms.ValidationError(problems)
        return urls

    def clean(self):
        cleaned = forms.Form.clean(self)
        model = catalog.MODELS.get(cleaned.get("model", ""))
        if model is None:
            return cleaned
        self._clean_size(model, cleaned)
        self._clean_params(model, cleaned)
        prompt = cleaned.get("prompt", "")
        if len(prompt) > model.max_prompt_chars:
            self.add_error(
                "prompt",
                f"{model.name} takes instructions of at most {model.max_prompt_chars:,} "
                f"characters; this one has {len(prompt):,}.",
            )
        return cleaned


class CompareForm(forms.Form):
    image = forms.FileField(label="Image", required=False)
    image_url = forms.URLField(
        label="Image URL", required=False, max_length=2000, assume_scheme="https"
    )
    prompt = forms.CharField(
        label="Instruction",
        max_length=32_000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Make it look like a watercolour"}),
    )
    models = forms.MultipleChoiceField(
        label="Models",
        choices=model_choices,
        widget=forms.CheckboxSelectMultiple,
        initial=["gpt-image-2", "gpt-image-1.5", "nano-banana-pro"],
    )

    def clean_prompt(self) -> str:
        return self.cleaned_data["prompt"].strip()

    def clean_image_url(self) -> str:
        url = self.cleaned_data["image_url"].strip()
        if url and (problem := url_problem(url)):
            raise forms.ValidationError(problem)
        return url

    def clean_models(self) -> list[str]:
        chosen = self.cleaned_data["models"]
        if len(chosen) < 2:
            raise forms.ValidationError("Pick at least two models to compare.")
        return chosen

    def clean(self):
        cleaned = super().clean()
        given = bool(cleaned.get("image")) + bool(cleaned.get("image_url"))
        if given == 0 and "image_url" in cleaned:
            self.add_error("image", "Give the image to compare: upload a file or give its URL.")
        elif given == 2:
            self.add_error("image", "Give one image: upload a file or give its URL, not both.")
        return cleaned
