"""What the upstream accepts, per model, written from the reference (images-edits-api.txt) and
upstream-notes.md, not imported from the app's catalog: the simulator is the app's test
double, so a rule the app gets wrong must be refused here, not agreed with.
"""

import re
from dataclasses import dataclass

ACE = "ace"
OPENAI = "openai"

MAX_IMAGES = 16
MAX_IMAGE_BYTES = 50 * 1024 * 1024
DALL_E_MAX_BYTES = 4 * 1024 * 1024

# gpt-image-2's custom sizes: multiples of 16, longer side <= 3840, at most 8,294,400 pixels
# (the reference); at least 655,360 pixels and at most 3:1 (OpenAI's guide).
SIZE_PATTERN = re.compile(r"^(\d{1,5})x(\d{1,5})$")


@dataclass(frozen=True)
class Model:
    name: str
    family: str  # "gpt-image", "dall-e" or "nano-banana"
    flavours: tuple[str, ...] = (ACE,)
    # None: any custom size under the gpt-image-2 rule; otherwise the only sizes accepted.
    sizes: tuple[str, ...] | None = None
    max_images: int = MAX_IMAGES
    max_prompt: int = 32_000
    # The optional gpt-image parameters this model takes.
    params: tuple[str, ...] = ()

    @property
    def is_nano_banana(self) -> bool:
        """Its adaptation layer reads model, prompt and image, and ignores everything else."""
        return self.family == "nano-banana"

    @property
    def is_gpt_image(self) -> bool:
        return self.family == "gpt-image"

    @property
    def takes_n(self) -> bool:
        """dall-e-2 alone answers with n images; the others ignore n and answer with one."""
        return self.family == "dall-e"


_GPT_IMAGE_1 = {
    "family": "gpt-image",
    "flavours": (ACE, OPENAI),
    "sizes": ("auto", "1024x1024", "1536x1024", "1024x1536"),
    "params": ("quality", "background", "output_format", "output_compression", "input_fidelity"),
}

MODELS = {
    model.name: model
    for model in [
        # input_fidelity must be omitted: gpt-image-2 always keeps inputs at high fidelity.
        Model(
            "gpt-image-2",
            "gpt-image",
            (ACE, OPENAI),
            params=("quality", "background", "output_format", "output_compression"),
        ),
        Model("gpt-image-1.5", **_GPT_IMAGE_1),
        Model("gpt-image-1", **_GPT_IMAGE_1),
        Model(
            "dall-e-2",
            "dall-e",
            sizes=("256x256", "512x512", "1024x1024"),
            max_images=1,
            max_prompt=1_000,
        ),
        Model("nano-banana", "nano-banana"),
        Model("nano-banana-2", "nano-banana"),
        Model("nano-banana-pro", "nano-banana"),
    ]
}

PARAMS = ("quality", "background", "output_format", "output_compression", "input_fidelity")
CHOICES = {
    "quality": ("auto", "low", "medium", "high"),
    "background": ("auto", "opaque", "transparent"),
    "output_format": ("png", "jpeg", "webp"),
    "input_fidelity": ("low", "high"),
}


def size_problem(model: Model, size: str) -> str | None:
    """Why the upstream refuses `size` for `model`, or None."""
    if model.sizes is not None:
        if size in model.sizes:
            return None
        return f"Invalid size '{size}'. Supported sizes are {', '.join(model.sizes)}."
    if size == "auto":
        return None
    match = SIZE_PATTERN.match(size)
    if not match:
        return "size must be auto or WIDTHxHEIGHT."
    width, height = int(match[1]), int(match[2])
    if not width or not height or width % 16 or height % 16:
        return "Width and height must be multiples of 16."
    if max(width, height) > 3840:
        return "The longer side must be at most 3840 pixels."
    if not 655_360 <= width * height <= 8_294_400:
        return "The total number of pixels must be between 655,360 and 8,294,400."
    if max(width, height) > 3 * min(width, height):
        return "The aspect ratio must be at most 3:1."
    return None


def param_problem(model: Model, given: dict[str, str]) -> tuple[str, str, str] | None:
    """(parameter, code, message) for the first gpt-image parameter the upstream refuses."""
    for name, value in given.items():
        if name not in model.params:
            return name, "unsupported_parameter", f"{model.name} does not take {name}."
        if name == "output_compression":
            if not value.isdigit() or int(value) > 100:
                return name, "invalid_value", "output_compression must be from 0 to 100."
        elif value not in CHOICES[name]:
            return name, "invalid_value", f"{name} must be one of {', '.join(CHOICES[name])}."
    output_format = given.get("output_format") or "png"
    if given.get("background") == "transparent" and output_format == "jpeg":
        message = "Transparent background is not supported for JPEG output format."
        return "background", "invalid_value", message
    if given.get("output_compression") and output_format == "png":
        message = "output_compression applies to jpeg and webp output only."
        return "output_compression", "invalid_value", message
    return None


def parse_size(size: str) -> tuple[int, int] | None:
    match = SIZE_PATTERN.match(size)
    return (int(match[1]), int(match[2])) if match else None
