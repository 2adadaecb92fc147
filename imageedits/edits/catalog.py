"""What each upstream model accepts: one entry a model, and the size rule.

Pure data and pure functions, with no Django imports, so that the form, the service module and
the simulator all read the same rules.
"""

import re
from dataclasses import dataclass

ACE = "ace"
OPENAI = "openai"

# gpt-image-2's custom sizes (images-edits-api.txt, plus upstream-notes.md's minimum and ratio).
SIZE_MULTIPLE = 16
MAX_SIDE = 3840
MAX_PIXELS = 8_294_400
MIN_PIXELS = 655_360
MAX_RATIO = 3

# The reference's table of recommended sizes: aspect ratio -> (1K, 2K, 4K).
RECOMMENDED_SIZES = {
    "1:1": ("1024x1024", "2048x2048", "2880x2880"),
    "4:3": ("1536x1024", "2048x1536", "3264x2448"),
    "3:4": ("1024x1536", "1536x2048", "2448x3264"),
    "16:9": ("1792x1024", "2048x1152", "3840x2160"),
    "9:16": ("1024x1792", "1152x2048", "2160x3840"),
}

_SIZE_PATTERN = re.compile(r"^(\d{1,5})x(\d{1,5})$")

MAX_CANDIDATES = 10


@dataclass(frozen=True)
class Param:
    """An extra request parameter: a choice among values, or a whole number in a range."""

    name: str
    label: str
    choices: tuple[str, ...] = ()
    number_range: tuple[int, int] | None = None
    help: str = ""


QUALITY = Param("quality", "Quality", ("auto", "low", "medium", "high"))
BACKGROUND = Param(
    "background",
    "Background",
    ("auto", "opaque", "transparent"),
    help="Transparent needs PNG or WebP output.",
)
OUTPUT_FORMAT = Param("output_format", "Output format", ("png", "jpeg", "webp"))
OUTPUT_COMPRESSION = Param(
    "output_compression",
    "Compression (%)",
    number_range=(0, 100),
    help="For JPEG and WebP output only.",
)
INPUT_FIDELITY = Param(
    "input_fidelity",
    "Input fidelity",
    ("low", "high"),
    help="How closely to keep faces and details of the inputs.",
)


@dataclass(frozen=True)
class ImageModel:
    name: str
    family: str  # "dall-e", "gpt-image" or "nano-banana"
    # None: any WIDTHxHEIGHT that passes the custom size rule; (): no size parameter at all.
    sizes: tuple[str, ...] | None
    flavours: frozenset[str] = frozenset({ACE})
    max_inputs: int = 16
    max_prompt_chars: int = 32_000
    native_n: bool = False
    params: tuple[Param, ...] = ()
    takes_mask: bool = False
    # How image URLs reach this model on Ace: "json" (a JSON body), "form" (URL strings in a
    # multipart body), or None (it takes files only: the app fetches URLs and uploads them).
    url_transport: str | None = None
    # What each input image must be: None for any of PNG, JPEG and WebP.
    input_format: str | None = None
    square_inputs: bool = False
    max_input_bytes: int = 50 * 1024 * 1024
    deprecated: bool = False
    credits: float | None = None
    # About how long one edit takes, for the progress shown while it runs. The API reference
    # states no latencies; these are assumptions (gpt-image edits take about a minute at
    # medium quality, dall-e-2 and the nano-banana models less), to be tuned from the
    # imageedits_upstream_seconds metric.
    typical_seconds: int = 60

    @property
    def takes_size(self) -> bool:
        return self.sizes != ()

    @property
    def takes_only_model_prompt_image(self) -> bool:
        """The nano-banana adaptation layer ignores everything but model, prompt and image."""
        return self.family == "nano-banana"

    @property
    def is_gpt_image(self) -> bool:
        return self.family == "gpt-image"


_BOTH = frozenset({ACE, OPENAI})

# Default credits per result for the OpenAI models. The reference prices only the nano-banana
# models (in credits a request); for these it says only that each result is charged as one
# image, whatever its size. So the defaults are OpenAI's published US-dollar prices per image
# at medium quality, 1024x1024 (openai.com/api/pricing), taken one credit to the dollar and
# rounded to the cent: gpt-image-1 $0.042, gpt-image-1.5 $0.034, dall-e-2 $0.020 (1024x1024;
# 256x256 and 512x512 are $0.016 and $0.018). gpt-image-2 is priced by tokens; about $0.05 an
# image at medium quality is our estimate. MODEL_CREDITS (settings) overrides any of them.
GPT_IMAGE_2_CREDITS = 0.05
GPT_IMAGE_1_5_CREDITS = 0.03
GPT_IMAGE_1_CREDITS = 0.04
DALL_E_2_CREDITS = 0.02
_GPT_IMAGE_1_SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536")
_GPT_IMAGE_1_PARAMS = (QUALITY, BACKGROUND, OUTPUT_FORMAT, OUTPUT_COMPRESSION, INPUT_FIDELITY)
# gpt-image-2 always keeps inputs at high fidelity and refuses the parameter.
_GPT_IMAGE_2_PARAMS = (QUALITY, BACKGROUND, OUTPUT_FORMAT, OUTPUT_COMPRESSION)

MODELS: dict[str, ImageModel] = {
    model.name: model
    for model in [
        ImageModel(
            "gpt-image-2",
            "gpt-image",
            sizes=None,
            flavours=_BOTH,
            params=_GPT_IMAGE_2_PARAMS,
            takes_mask=True,
            url_transport="json",
            credits=GPT_IMAGE_2_CREDITS,
        ),
        ImageModel(
            "gpt-image-1.5",
            "gpt-image",
            _GPT_IMAGE_1_SIZES,
            _BOTH,
            params=_GPT_IMAGE_1_PARAMS,
            takes_mask=True,
            deprecated=True,
            credits=GPT_IMAGE_1_5_CREDITS,
        ),
        ImageModel(
            "gpt-image-1",
            "gpt-image",
            _GPT_IMAGE_1_SIZES,
            _BOTH,
            params=_GPT_IMAGE_1_PARAMS,
            takes_mask=True,
            credits=GPT_IMAGE_1_CREDITS,
        ),
        ImageModel(
            "dall-e-2",
            "dall-e",
            ("256x256", "512x512", "1024x1024"),
            max_inputs=1,
            max_prompt_chars=1_000,
            native_n=True,
            takes_mask=True,
            input_format="PNG",
            square_inputs=True,
            max_input_bytes=4 * 1024 * 1024,
            deprecated=True,
            credits=DALL_E_2_CREDITS,
            typical_seconds=15,
        ),
        ImageModel(
            "nano-banana",
            "nano-banana",
            (),
            url_transport="form",
            credits=0.14,
            typical_seconds=20,
        ),
        ImageModel(
            "nano-banana-2",
            "nano-banana",
            (),
            url_transport="form",
            credits=0.28,
            typical_seconds=30,
        ),
        ImageModel(
            "nano-banana-pro",
            "nano-banana",
            (),
            url_transport="form",
            credits=0.35,
            typical_seconds=40,
        ),
    ]
}

DEFAULT_MODEL = "gpt-image-2"


def parse_size(size: str) -> tuple[int, int] | None:
    """(width, height) for a WIDTHxHEIGHT size, None for anything else."""
    match = _SIZE_PATTERN.match(size)
    return (int(match[1]), int(match[2])) if match else None


def size_error(model: ImageModel, size: str) -> str | None:
    """Why `size` breaks the model's size rule, in plain words; None if it is fine."""
    if not model.takes_size:
        return None
    if model.sizes is not None:
        if size in model.sizes or size == "":  # empty: the model's default size
            return None
        return f"{model.name} accepts these sizes only: {', '.join(model.sizes)}."
    return custom_size_error(size)


def custom_size_error(size: str) -> str | None:
    """The gpt-image-2 rule: auto, empty, or WIDTHxHEIGHT within the upstream's bounds."""
    if size in ("", "auto"):
        return None
    parsed = parse_size(size)
    if parsed is None:
        return "Size must be auto or WIDTHxHEIGHT in pixels, like 1024x1536."
    width, height = parsed
    if width == 0 or height == 0:
        return "Width and height must be greater than zero."
    off = [side for side in (width, height) if side % SIZE_MULTIPLE]
    if off:
        which = f"{off[0]} is not" if len(off) == 1 else "neither side is"
        return f"Width and height must be multiples of {SIZE_MULTIPLE} ({which})."
    if max(width, height) > MAX_SIDE:
        return f"The longer side can be at most {MAX_SIDE} pixels ({max(width, height)} is more)."
    pixels = width * height
    if pixels > MAX_PIXELS:
        return f"At most {MAX_PIXELS:,} pixels in total ({size} is {pixels:,})."
    if pixels < MIN_PIXELS:
        return f"At least {MIN_PIXELS:,} pixels in total ({size} is {pixels:,})."
    if max(width, height) > MAX_RATIO * min(width, height):
        return f"The longer side can be at most {MAX_RATIO} times the shorter side."
    return None


def param_errors(model: ImageModel, values: dict[str, str]) -> dict[str, str]:
    """Why the extra parameters break the model's rules, per parameter; empty when fine.

    Values are strings as a form or a request carries them; empty means "not sent"."""
    errors = {}
    accepted = {param.name: param for param in model.params}
    for name, value in values.items():
        if value == "":
            continue
        param = accepted.get(name)
        if param is None:
            errors[name] = f"{model.name} does not take {name}."
        elif param.choices and value not in param.choices:
            errors[name] = f"{param.label} must be one of {', '.join(param.choices)}."
        elif param.number_range:
            low, high = param.number_range
            if not value.isdigit() or not low <= int(value) <= high:
                errors[name] = f"{param.label} must be a whole number from {low} to {high}."
    output_format = values.get("output_format") or "png"
    if values.get("background") == "transparent" and output_format == "jpeg":
        errors.setdefault("background", "A transparent background needs PNG or WebP output.")
    if values.get("output_compression") and output_format == "png":
        errors.setdefault("output_compression", "Compression applies to JPEG and WebP only.")
    return errors


def params_for(model: ImageModel, values: dict[str, str]) -> dict[str, str]:
    """Only the parameters this model takes, and only those given."""
    names = {param.name for param in model.params}
    return {name: value for name, value in values.items() if name in names and value != ""}
