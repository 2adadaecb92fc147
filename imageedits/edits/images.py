"""Decode, validate, re-encode and thumbnail images with Pillow.

Nothing is stored as it came: every image is fully decoded from an allow-list of formats and
written out again, without its metadata, under a name the server chooses.
"""

import io
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageChops, ImageFilter, ImageOps

# What the upstream accepts as input and what it answers with.
FORMATS = ("PNG", "JPEG", "WEBP")
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
MAX_MASK_BYTES = 4 * 1024 * 1024
# How far, in pixels, the result fades into the original inside the mask's edge.
FEATHER_RADIUS = 4
# Well above the largest output (3840x2160) and a 48-megapixel phone photo, far below a bomb.
MAX_PIXELS = 64_000_000
# Pillow's own bomb guard at our limit, its warning turned into an error in decode().
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# All the images of one edit together (uploads, carried and fetched): decoding costs CPU by
# the pixel, and one request may hold 16 images.
EDIT_MAX_PIXELS = 100_000_000
MAX_SIDE = 16_384
# Pages show WebP copies at the size they show them; the stored image is only downloaded.
# Gallery cards are at most about 260 CSS pixels wide on a desktop (a column of a phone's width
# at most 480), and the recent list shows 72: 400 covers them. An edit's page shows a result in
# at most about 720 (two thirds of the 1200 the page is wide), the inputs smaller: 800.
THUMBNAIL_SIDE = 400
PREVIEW_SIDE = 800
# Against 92 for stored images: at these sizes 80 looks the same and weighs half.
SHOWN_QUALITY = 80


# Re-encoding is on the way to every result, so speed over the last bytes: level 1 is 2 to 5
# times as fast as the default 6, and about 12% larger.
PNG_OPTIONS = {"compress_level": 1}


def content_type_for(name: str) -> str:
    extension = name.rsplit(".", 1)[-1].lower()
    for image_format, known in EXTENSIONS.items():
        if known == extension:
            return CONTENT_TYPES[image_format]
    return "application/octet-stream"


class InvalidImage(ValueError):
    """The bytes are not an image we accept; the message says why, in plain words."""


@dataclass(frozen=True)
class EncodedImage:
    """Encoded bytes in a temporary file, not in memory: one edit holds up to 16 images of
    many megabytes each from the form that checks them to the service that stores them."""

    file: IO[bytes]
    format: str
    width: int
    height: int
    size: int  # in bytes

    @property
    def content(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def decode(data: bytes | io.IOBase, max_pixels: int = MAX_PIXELS) -> tuple[Image.Image, str]:
    """Fully decode an image, refusing other formats, bombs and truncated files, and images of
    more than `max_pixels` (what is left of an edit's budget) before decoding them.

    Returns the upright pixels and the format they came in."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream, formats=FORMATS)
            # Checked here as well: the warning filter above is process-wide state that
            # another thread can change while this one decodes.
            if image.width * image.height > MAX_PIXELS:
                raise Image.DecompressionBombError(f"{image.width}x{image.height}")
            if image.width * image.height > max_pixels:
                raise InvalidImage(over_budget(image.width * image.height))
            if max(image.size) > MAX_SIDE:
                raise InvalidImage(
                    f"The image is {image.width}x{image.height}; sides of at most "
                    f"{MAX_SIDE:,} pixels are accepted."
                )
            image.load()
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidImage(
            f"The image has more than {MAX_PIXELS // 1_000_000} megapixels."
        ) from error
    except Exception as error:  # Pillow raises many types for damaged or foreign data.
        raise InvalidImage("It is not a PNG, JPEG or WebP image that can be read.") from error
    # Phone photos keep their orientation in EXIF, which re-encoding drops: apply it first
    # (in place: a copy of a 4K image costs as much time as decoding half of it).
    image_format = image.format
    ImageOps.exif_transpose(image, in_place=True)
    return image, image_format


def encode(image: Image.Image, image_format: str, quality: int = 92) -> EncodedImage:
    """Write the pixels out again in one of FORMATS, without metadata."""
    if image_format not in FORMATS:
        image_format = "PNG"
    has_alpha = image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info)
    if image_format == "JPEG":
        image = image.convert("RGB")
    elif image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA" if has_alpha else "RGB")
    file = tempfile.TemporaryFile()  # noqa: SIM115 - the EncodedImage's; closed with it
    options = {
        "PNG": PNG_OPTIONS,
        "JPEG": {"quality": quality, "optimize": True},
        # Twice as fast as the default method 4, a few percent larger.
        "WEBP": {"quality": quality, "method": 2},
    }[image_format]
    image.save(file, format=image_format, **options)
    return EncodedImage(file, image_format, image.width, image.height, file.tell())


def reencode(data: bytes | io.IOBase, max_pixels: int = MAX_PIXELS) -> EncodedImage:
    """Decode and write out again in the same format."""
    image, image_format = decode(data, max_pixels)
    return encode(image, image_format)


def over_budget(pixels: int) -> str:
    return (
        f"It has {pixels / 1_000_000:.1f} megapixels, more than this edit has left: all the "
        f"images of one edit may have {EDIT_MAX_PIXELS // 1_000_000} megapixels in all."
    )


def header_size(data: io.IOBase) -> tuple[int, int] | None:
    """An image's width and height from its header alone (cheap), None if it has none we
    read; the full decode judges it."""
    try:
        with Image.open(data, formats=FORMATS) as image:
            return image.size
    except Exception:  # not an image: decode() says so in its own words
        return None
    finally:
        data.seek(0)


def stored(data: bytes | IO[bytes]) -> EncodedImage:
    """An image this app stored itself (so already decoded and re-encoded once), copied to a
    temporary file: read only its header for the format and size."""
    file = tempfile.TemporaryFile()  # noqa: SIM115 - the EncodedImage's; closed with it
    shutil.copyfileobj(io.BytesIO(data) if isinstance(data, bytes) else data, file)
    size = file.tell()
    file.seek(0)
    with Image.open(file, formats=FORMATS) as image:
        return EncodedImage(file, image.format, image.width, image.height, size)


def convert(image: EncodedImage, image_format: str) -> EncodedImage:
    if image.format == image_format:
        return image
    pixels, _ = decode(image.content)
    return encode(pixels, image_format)


def thumbnail(content: bytes, side: int = THUMBNAIL_SIDE) -> EncodedImage:
    """A WebP copy no larger than `side` a side, for a page that shows the image that small."""
    image, _ = decode(content)
    return encode(_fit(image, side), "WEBP", SHOWN_QUALITY)


def preview(content: bytes) -> EncodedImage:
    return thumbnail(content, PREVIEW_SIDE)


def reencode_with_previews(data: bytes) -> tuple[EncodedImage, EncodedImage, EncodedImage]:
    """A result written out again as it came, its thumbnail and its preview, from one decode
    (decoding a 4K PNG costs as much as the rest together)."""
    image, image_format = decode(data)
    shown = _fit(image, PREVIEW_SIDE)
    return (
        encode(image, image_format),
        encode(_fit(shown, THUMBNAIL_SIDE), "WEBP", SHOWN_QUALITY),
        encode(shown, "WEBP", SHOWN_QUALITY),
    )


def _fit(image: Image.Image, side: int) -> Image.Image:
    """`image` made to fit within `side` (a resized copy), or itself if it already does."""
    if max(image.size) <= side:
        return image
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # As Image.thumbnail does: first shrink by a whole factor (cheap), then resample the rest;
    # half the time of resampling a 4K image in one go, and it looks the same.
    return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)


def has_alpha(image: Image.Image) -> bool:
    return "A" in image.getbands() or "transparency" in image.info


def mask_for(data: bytes, size: tuple[int, int]) -> EncodedImage:
    """A mask for a first input of `size`: a PNG with an alpha channel, exactly that size,
    under 4 MB, with some transparent (to be edited) pixels."""
    if len(data) > MAX_MASK_BYTES:
        raise InvalidImage("The mask is larger than 4 MB.")
    image, image_format = decode(data)
    if image_format != "PNG" or not has_alpha(image):
        raise InvalidImage("The mask must be a PNG with an alpha channel.")
    if image.size != size:
        raise InvalidImage(
            f"The mask is {image.width}x{image.height} but the first image is "
            f"{size[0]}x{size[1]}; they must be the same size."
        )
    image = image.convert("RGBA")
    if image.getchannel("A").getextrema()[0] > 0:
        raise InvalidImage("The mask has no transparent area, so nothing would be edited.")
    return encode(image, "PNG")


def keep_outside_mask(result: EncodedImage, original: bytes, mask: bytes) -> EncodedImage:
    """The result inside the mask's transparent area, the original everywhere else.

    The result is scaled to the original's size where they differ, and fades into the original
    just inside the mask's edge; outside the mask every pixel is the original's. Written as PNG
    so that those pixels stay exact."""
    edited, _ = decode(result.content)
    base, _ = decode(original)
    holes, _ = decode(mask)
    if edited.size != base.size:
        edited = edited.resize(base.size, Image.Resampling.LANCZOS)
    edit_area = ImageOps.invert(holes.convert("RGBA").getchannel("A"))  # 255: edit here
    # Blurring softens the edge; the darker of blurred and sharp keeps it inside the mask.
    weight = ImageChops.darker(
        edit_area.filter(ImageFilter.GaussianBlur(FEATHER_RADIUS)), edit_area
    )
    mode = "RGBA" if has_alpha(base) or has_alpha(edited) else "RGB"
    return encode(Image.composite(edited.convert(mode), base.convert(mode), weight), "PNG")
