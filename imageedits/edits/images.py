"""Decode, validate, re-encode and thumbnail images with Pillow.

Nothing is stored as it came: every image is fully decoded from an allow-list of formats and
written out again, without its metadata, under a name the server chooses.
"""

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

# What the upstream accepts as input and what it answers with.
FORMATS = ("PNG", "JPEG", "WEBP")
EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# Well above the largest output (3840x2160) and a 48-megapixel phone photo, far below a bomb.
MAX_PIXELS = 64_000_000
THUMBNAIL_SIDE = 640


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
    content: bytes
    format: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


def decode(data: bytes | io.IOBase) -> tuple[Image.Image, str]:
    """Fully decode an image, refusing other formats, bombs and truncated files.

    Returns the upright pixels and the format they came in."""
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream, formats=FORMATS)
            if image.width * image.height > MAX_PIXELS:
                raise InvalidImage(
                    f"The image is too large ({image.width}x{image.height}); "
                    f"at most {MAX_PIXELS // 1_000_000} megapixels are accepted."
                )
            image.load()
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InvalidImage("The image is too large to process.") from error
    except Exception as error:  # Pillow raises many types for damaged or foreign data.
        raise InvalidImage("It is not a PNG, JPEG or WebP image that can be read.") from error
    # Phone photos keep their orientation in EXIF, which re-encoding drops: apply it first.
    return ImageOps.exif_transpose(image), image.format


def encode(image: Image.Image, image_format: str) -> EncodedImage:
    """Write the pixels out again in one of FORMATS, without metadata."""
    if image_format not in FORMATS:
        image_format = "PNG"
    has_alpha = image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info)
    if image_format == "JPEG":
        image = image.convert("RGB")
    elif image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA" if has_alpha else "RGB")
    buffer = io.BytesIO()
    options = {
        "PNG": {"compress_level": 6},
        "JPEG": {"quality": 92, "optimize": True},
        "WEBP": {"quality": 92, "method": 4},
    }[image_format]
    image.save(buffer, format=image_format, **options)
    return EncodedImage(buffer.getvalue(), image_format, image.width, image.height)


def reencode(data: bytes | io.IOBase) -> EncodedImage:
    """Decode and write out again in the same format."""
    image, image_format = decode(data)
    return encode(image, image_format)


def convert(image: EncodedImage, image_format: str) -> EncodedImage:
    if image.format == image_format:
        return image
    pixels, _ = decode(image.content)
    return encode(pixels, image_format)


def thumbnail(content: bytes) -> EncodedImage:
    image, _ = decode(content)
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return encode(image, "WEBP")
