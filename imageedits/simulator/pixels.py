"""Real pixel edits with Pillow: the simulator's stand-in for a model following an instruction.

Pure functions, PIL images in and PIL images out, so each one can be tested on its own. Images are
worked on in two modes only: RGBA when the input has transparency (kept as it is, since gpt-image
answers are PNGs that may carry alpha) and RGB otherwise.
"""

import io
import math
import re
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

Edit = Callable[[Image.Image], Image.Image]

# Sample pictures served at /samples/<name>.png so image-URL inputs can be tried offline.
SAMPLE_SIZES = {
    "landscape": (1024, 768),
    "portrait": (768, 1024),
    "square": (1024, 1024),
    "transparent": (1024, 1024),
}

# Tints that tell dall-e-2's n variants apart; variant 0 is the edit itself.
_VARIANT_TINTS = [
    (255, 80, 80),
    (80, 200, 255),
    (120, 255, 120),
    (255, 200, 60),
    (200, 100, 255),
    (255, 120, 200),
    (60, 255, 220),
    (255, 255, 255),
    (30, 30, 120),
]


def decode(data: bytes) -> Image.Image:
    """A loaded, upright image in RGB or RGBA; ValueError if Pillow cannot read the bytes."""
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        source_format = image.format
        image = ImageOps.exif_transpose(image)
    # Broken files raise many different errors inside Pillow's plugins; all mean "not an image".
    except Exception as error:
        raise ValueError(f"not a readable image ({error})") from error
    image = normalise(image)
    image.format = source_format
    return image


def normalise(image: Image.Image) -> Image.Image:
    """RGBA if the image has any transparency, RGB otherwise."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        return image.convert("RGBA")
    return image.convert("RGB")


def encode(image: Image.Image, image_format: str = "png") -> bytes:
    """PNG or WEBP keep alpha; JPEG is flattened onto white."""
    buffer = io.BytesIO()
    if image_format == "jpeg":
        flatten(image).save(buffer, "JPEG", quality=90)
    elif image_format == "webp":
        image.save(buffer, "WEBP", quality=90)
    else:
        # Low compression: these files live for minutes in memory, speed matters more than size.
        image.save(buffer, "PNG", compress_level=3)
    return buffer.getvalue()


def flatten(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """The image as RGB, with any transparent parts shown over `background`."""
    if image.mode != "RGBA":
        return image.convert("RGB")
    canvas = Image.new("RGB", image.size, background)
    canvas.paste(image, mask=image.getchannel("A"))
    return canvas


# --- Combining inputs and shaping the output -------------------------------------------------


def combine(images: list[Image.Image]) -> Image.Image:
    """One picture from all inputs: a grid collage the size of the first input.

    Keeping the first input's size means "auto" size and a mask (sized like the first image) both
    apply to the collage unchanged.
    """
    first = images[0]
    if len(images) == 1:
        return first.copy()
    mode = "RGBA" if any(image.mode == "RGBA" for image in images) else "RGB"
    columns = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    cell = (max(1, first.width // columns), max(1, first.height // rows))
    background = (0, 0, 0, 0) if mode == "RGBA" else (245, 245, 245)
    canvas = Image.new(mode, first.size, background)
    for index, image in enumerate(images):
        tile = ImageOps.contain(image.convert(mode), cell)
        left = (index % columns) * cell[0] + (cell[0] - tile.width) // 2
        top = (index // columns) * cell[1] + (cell[1] - tile.height) // 2
        canvas.paste(tile, (left, top))
    return canvas


def fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The image at exactly `size`: scaled to cover it and centre-cropped, never stretched."""
    if image.size == size:
        return image
    return ImageOps.fit(image, size, Image.Resampling.BICUBIC)


def apply_mask(original: Image.Image, edited: Image.Image, mask: Image.Image) -> Image.Image:
    """Keep the original where the mask is opaque: fully transparent mask pixels mark the edit."""
    if edited.size != original.size or mask.size != original.size:
        return edited  # a rotation changed the shape; there is no pixel-for-pixel match left
    return Image.composite(original.convert(edited.mode), edited, mask.getchannel("A"))


def variant(image: Image.Image, index: int) -> Image.Image:
    """The index-th of several candidates: 0 is the image itself, the others visibly tinted."""
    if index == 0:
        return image
    tint = _VARIANT_TINTS[(index - 1) % len(_VARIANT_TINTS)]
    return _colour_only(lambda rgb: Image.blend(rgb, Image.new("RGB", rgb.size, tint), 0.3))(image)


# --- The edits ----------------------------------------------------------------------------------


def _colour_only(edit: Edit) -> Edit:
    """Run an RGB edit on the colour channels and put the alpha channel back untouched."""

    def wrapped(image: Image.Image) -> Image.Image:
        result = edit(image.convert("RGB"))
        if image.mode == "RGBA":
            result = result.convert("RGB")
            result.putalpha(image.getchannel("A"))
        return result

    return wrapped


def _grayscale(rgb: Image.Image) -> Image.Image:
    return ImageOps.grayscale(rgb).convert("RGB")


def _sepia(rgb: Image.Image) -> Image.Image:
    return ImageOps.colorize(ImageOps.grayscale(rgb), black=(40, 26, 13), white=(255, 240, 192))


def _blur(rgb: Image.Image) -> Image.Image:
    return rgb.filter(ImageFilter.GaussianBlur(radius=max(2, min(rgb.size) / 100)))


def _edges(rgb: Image.Image) -> Image.Image:
    """Dark outlines on white, like a pencil sketch."""
    lines = ImageOps.autocontrast(ImageOps.grayscale(rgb).filter(ImageFilter.FIND_EDGES))
    return ImageOps.invert(lines).convert("RGB")


def _warm_frame(rgb: Image.Image) -> Image.Image:
    """The default edit when no keyword matches: a warm colour grade inside a golden frame."""
    red, green, blue = rgb.split()
    red = red.point(lambda v: min(255, int(v * 1.12) + 12))
    blue = blue.point(lambda v: int(v * 0.8))
    result = Image.merge("RGB", (red, green, blue))
    width = max(4, min(rgb.size) // 40)
    ImageDraw.Draw(result).rectangle(
        (0, 0, rgb.width - 1, rgb.height - 1), outline=(212, 160, 40), width=width
    )
    return result


def pixelate(image: Image.Image) -> Image.Image:
    block = max(4, min(image.size) // 48)
    small = image.resize(
        (math.ceil(image.width / block), math.ceil(image.height / block)), Image.Resampling.BOX
    )
    return small.resize(image.size, Image.Resampling.NEAREST)


def rotate(image: Image.Image, degrees: float) -> Image.Image:
    """Turn clockwise by `degrees` (as people mean "rotate 90"), growing the canvas to fit."""
    fill = (0, 0, 0, 0) if image.mode == "RGBA" else (255, 255, 255)
    return image.rotate(-degrees, expand=True, fillcolor=fill)


invert = _colour_only(ImageOps.invert)
grayscale = _colour_only(_grayscale)
sepia = _colour_only(_sepia)
blur = _colour_only(_blur)
brighten = _colour_only(lambda rgb: ImageEnhance.Brightness(rgb).enhance(1.35))
darken = _colour_only(lambda rgb: ImageEnhance.Brightness(rgb).enhance(0.6))
sharpen = _colour_only(lambda rgb: ImageEnhance.Sharpness(rgb).enhance(3.0))
contrast = _colour_only(lambda rgb: ImageEnhance.Contrast(rgb).enhance(1.6))
posterize = _colour_only(lambda rgb: ImageOps.posterize(rgb, 3))
edges = _colour_only(_edges)
warm_frame = _colour_only(_warm_frame)
mirror = ImageOps.mirror
flip = ImageOps.flip

# Instruction keywords -> edit, matched case-insensitively at the start of a word.
KEYWORDS: list[tuple[str, str]] = [
    (r"dark mode|invert|negative", "invert"),
    (r"gr[ae]yscale|black and white|black-and-white|monochrome", "grayscale"),
    (r"blur", "blur"),
    (r"sepia", "sepia"),
    (r"mirror|flip horizontally|flip it horizontally", "mirror"),
    (r"flip vertically|flip it vertically|upside down|upside-down", "flip"),
    (r"rotat", "rotate"),
    (r"brighten|brighter", "brighten"),
    (r"darken|darker", "darken"),
    (r"sharpen", "sharpen"),
    (r"contrast", "contrast"),
    (r"posteri[sz]e", "posterize"),
    (r"pixelate|pixel art", "pixelate"),
    (r"sketch|edges|edge detect", "edges"),
]

EDITS: dict[str, Edit] = {
    "invert": invert,
    "grayscale": grayscale,
    "blur": blur,
    "sepia": sepia,
    "mirror": mirror,
    "flip": flip,
    "brighten": brighten,
    "darken": darken,
    "sharpen": sharpen,
    "contrast": contrast,
    "posterize": posterize,
    "pixelate": pixelate,
    "edges": edges,
    "warm_frame": warm_frame,
}

_DEGREES = re.compile(r"rotat\w*[^\d\-.]{0,20}(-?\d{1,3}(?:\.\d+)?)", re.IGNORECASE)
_COUNTER = re.compile(r"counter-?clockwise|anti-?clockwise", re.IGNORECASE)


def rotation_degrees(prompt: str) -> float:
    """Clockwise degrees the prompt asks for: its number if it gives one, 90 otherwise."""
    match = _DEGREES.search(prompt)
    degrees = float(match[1]) if match else 90.0
    return -degrees if _COUNTER.search(prompt) else degrees


def plan(prompt: str) -> list[tuple[str, Edit]]:
    """The edits a prompt asks for, in the order it mentions them; the default if none."""
    found: list[tuple[int, str]] = []
    for pattern, name in KEYWORDS:
        match = re.search(rf"\b(?:{pattern})", prompt, re.IGNORECASE)
        if match and name not in (known for _, known in found):
            found.append((match.start(), name))
    steps: list[tuple[str, Edit]] = []
    for _, name in sorted(found):
        if name == "rotate":
            degrees = rotation_degrees(prompt)
            steps.append((name, lambda image, degrees=degrees: rotate(image, degrees)))
        else:
            steps.append((name, EDITS[name]))
    return steps or [("warm_frame", warm_frame)]


def apply_prompt(image: Image.Image, prompt: str) -> Image.Image:
    for _, edit in plan(prompt):
        image = edit(image)
    return image


# --- Samples ------------------------------------------------------------------------------------


def make_sample(name: str) -> Image.Image:
    """A colourful, asymmetric test picture, so any edit (even a mirror) is visible."""
    width, height = SAMPLE_SIZES[name]
    across = Image.linear_gradient("L").rotate(90).resize((width, height))
    down = Image.linear_gradient("L").resize((width, height))
    picture = Image.merge(
        "RGB", (ImageOps.invert(across), down, Image.new("L", (width, height), 170))
    )
    if name == "transparent":
        picture = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(picture)
    unit = min(width, height) // 8
    # A sun top-left, a box bottom-right, a triangle and stripes: nothing is symmetric.
    draw.ellipse((unit, unit, unit * 3, unit * 3), fill=(255, 220, 0, 255), outline=(0, 0, 0, 255))
    draw.rectangle(
        (width - unit * 4, height - unit * 3, width - unit, height - unit),
        fill=(20, 60, 200, 255),
    )
    draw.polygon(
        [(width // 2, unit * 2), (width // 2 + unit * 2, unit * 5), (width // 2 - unit, unit * 5)],
        fill=(30, 170, 60, 255),
    )
    for stripe in range(5):
        left = unit + stripe * unit // 2
        draw.rectangle(
            (left, height - unit * 3, left + unit // 4, height - unit), fill=(200, 0, 90)
        )
    label = f"{name} {width}x{height}"
    draw.text((unit, height - unit * 3 // 4), label, fill=(0, 0, 0, 255), font_size=unit // 3)
    return picture
