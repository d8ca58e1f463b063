"""Photo files -> grey arrays: what Pillow decodes, bounded before it decodes.

``read_image`` gives float32 (H, W) in 0..1 (0 = black) for any file Pillow reads in FORMATS:
EXIF orientation applied, an animation's first frame, transparency composited onto paper, a
big photo decoded small. Its pixel count is checked from the header first (decompression
bombs), and every failure is one ImageError line. ``preprocess`` takes it from there.
"""
from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError, features

from ..errors import ImageError
from ..files import why_unreadable



def _reads_avif() -> bool:
    try:
        return bool(features.check_module("avif"))
    except ValueError:  # a Pillow older than 11.3 does not know the module's name
        return False


MAX_PIXELS = 40_000_000  # a 24-megapixel camera photo passes; a 20,000 x 20,000 "bomb" does not
# AVIF (a phone's or a browser's newer format) where this Pillow reads it: 11.3 and later, with libavif
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF", "PPM") + (("AVIF",) * _reads_avif())


def photo_suffixes(formats=FORMATS) -> frozenset[str]:
    """The file name endings Pillow gives the formats ``read_image`` accepts: ".png", ".jpg", ..."""
    return frozenset(suffix for suffix, kind in Image.registered_extensions().items() if kind in formats)


def read_image(source: str | os.PathLike | bytes, *, max_pixels: int = MAX_PIXELS, formats=FORMATS,
               reduce_to: int | None = None) -> np.ndarray:
    """Decode a photo (a path or the file's bytes) to grey float32 (H, W) in 0..1, 0 = black.

    EXIF orientation is applied, an animation gives its first frame, transparency is composited
    onto white. The pixel count comes from the header and is checked before anything is decoded,
    so a decompression bomb is refused at once. ``formats`` limits what is accepted.
    ``reduce_to``: a photo more than twice that long is decoded at a whole fraction of its size,
    its longest side still >= ``reduce_to`` (JPEG scales inside the decoder; other formats are
    reduced as 8-bit grey, before the float copy), so a 24-megapixel photo costs ~1 MB, not 100.
    Raises ImageError with one line saying why.
    """
    is_bytes = isinstance(source, (bytes, bytearray, memoryview))
    if not (is_bytes or isinstance(source, (str, os.PathLike))):  # None, an array: open() raised TypeError
        raise ImageError(f"read_image takes a file's path or its bytes, got {type(source).__name__}; an array is "
                         "already an image: pass it to to_mnist as grey (H, W) in 0..1")
    where = "" if is_bytes else f"{os.fspath(source)}: "
    try:
        file = io.BytesIO(source) if is_bytes else open(source, "rb")
    except OSError as error:
        raise ImageError(f"{where}{why_unreadable(error)}; give an image file") from None
    with file:
        try:
            image = Image.open(file, formats=formats)
        except UnidentifiedImageError:
            names = ", ".join("WebP" if f == "WEBP" else f for f in formats)
            file.seek(0)
            kind = _heif_kind(file.read(12))
            raise ImageError(f"{where}{kind or 'not an image scratchnn can read'}; give a file in one of: "
                             f"{names}{' (export it as JPEG)' if kind else ''}") from None
        except Image.DecompressionBombError:  # Pillow's own limit (2 x 89.5 million pixels) came first
            limit = min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or max_pixels))
            raise ImageError(f"{where}more than {limit:,} pixels, the most read (a guard against decompression "
                             "bombs: small files that decode to gigabytes); scale the image down first") from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
            raise ImageError(f"{where}the image header is corrupt or truncated ({error})") from None
        with image:
            width, height = image.size
            if width * height // _jpeg_shrink(image, reduce_to) ** 2 > max_pixels:  # what is decoded
                raise ImageError(f"{where}{width:,} x {height:,} pixels is more than the {max_pixels:,} allowed "
                                 "(a guard against decompression bombs: small files that decode to gigabytes); "
                                 "scale the image down first")
            if width * height == 0:
                raise ImageError(f"{where}the image has no pixels ({width} x {height})")
            try:
                return _grey(ImageOps.exif_transpose(_decoded_small(image, reduce_to)), where)
            except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as error:
                raise ImageError(f"{where}the {image.format} data cannot be decoded ({error}); "
                                 "is the file truncated or corrupt?") from None


def _heif_kind(head: bytes) -> str:
    """'a HEIC photo (...)' for the start of an HEIF file (an iPhone's photos), 'an AVIF image
    (...)' for an AVIF this Pillow or ``formats`` does not read, else ''."""
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
        return "a HEIC photo (an iPhone's default format), which Pillow cannot read without a plugin"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "an AVIF image, which " + ("is not accepted here" if _reads_avif() else
                                         "this Pillow cannot read (it needs Pillow 11.3 or later, with libavif)")
    return ""


def _jpeg_shrink(image: Image.Image, reduce_to: int | None) -> int:
    """1, or the factor (2, 4, 8) a JPEG's decoder will shrink it by for ``_decoded_small``: a
    48-megapixel phone photo is decoded at 3 megapixels, so it passes the bomb guard."""
    k = max(image.size) // reduce_to if reduce_to and image.format == "JPEG" else 1
    return 1 if k < 2 else min(8, 1 << (k.bit_length() - 1))


def _decoded_small(image: Image.Image, reduce_to: int | None) -> Image.Image:
    """The image decoded at 1/k of its size, k the largest whole factor keeping its longest side
    >= ``reduce_to`` (the image itself when k < 2). Grey from here on, as the pipeline is."""
    k = max(image.size) // reduce_to if reduce_to else 1
    if k < 2:
        return image
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):  # "L" would clip 16-bit and float grey
        return (image if image.mode in ("I", "F") else image.convert("I")).reduce(k)
    if image.format == "JPEG":  # the decoder scales by 1/2, 1/4 or 1/8 for free
        image.draft("L", (image.width // k, image.height // k))
    if image.has_transparency_data:  # reduced before it is composited: 2 bytes a pixel at full size, not 13
        return _composited(_grey_alpha(image).reduce(k))
    grey = image.convert("L")
    k = max(grey.size) // reduce_to
    return grey.reduce(k) if k >= 2 else grey


def _grey_image(image: Image.Image) -> Image.Image:
    """8-bit grey ("L"); transparency composited onto paper (``_composited``)."""
    return _composited(_grey_alpha(image)) if image.has_transparency_data else image.convert("L")


def _grey_alpha(image: Image.Image) -> Image.Image:
    """Grey and alpha ("LA"); a palette's transparency goes through RGBA, which keeps it."""
    return (image.convert("RGBA") if image.mode == "P" else image).convert("LA")


def _composited(image: Image.Image) -> Image.Image:
    """An "LA" image on paper, as "L": white paper, or black where most of the image is
    transparent and what is drawn is light (a white digit on a transparent background, as drawing
    apps export one, would vanish on white)."""
    grey_alpha = np.asarray(image, np.float32)
    grey, alpha = grey_alpha[..., 0], grey_alpha[..., 1] / 255
    drawn = float(alpha.sum())
    light_ink = drawn > 0 and float((grey * alpha).sum()) / drawn > 127.5 and float(np.mean(alpha < 0.5)) > 0.5
    paper = 0.0 if light_ink else 255.0
    return Image.fromarray(np.round(grey * alpha + paper * (1 - alpha)).astype(np.uint8), "L")


def _grey(image: Image.Image, where: str = "") -> np.ndarray:
    """float32 (H, W) in 0..1 from any Pillow mode; transparent pixels become white paper."""
    if image.mode == "I" or image.mode.startswith("I;16"):  # 16-bit grey: convert("L") would clip at 255
        return _as_brightness(np.asarray(image, np.float32), (255, 65535))
    if image.mode == "F":  # float TIFFs
        pixels = np.asarray(image, np.float32)
        missing = np.count_nonzero(~np.isfinite(pixels))
        if missing:  # nan_to_num read NaN as black ink (the API fuzz audit)
            raise ImageError(f"{where}the float image holds {missing:,} NaN or infinite pixel(s), which are no "
                             "brightness; fill them (0 for black, 1 for white) and save it again")
        return _as_brightness(pixels, (1, 255, 65535))
    return np.asarray(_grey_image(image), np.float32) / np.float32(255)


def _as_brightness(pixels: np.ndarray, whites: tuple[int, ...]) -> np.ndarray:
    """0..1 from pixels whose white is the first of ``whites`` their largest value does not pass
    (or that value itself): Pillow opens 8-bit values in 32-bit TIFFs and 16-bit PNGs alike as
    "I", and the numerics audit's clear 7 in a 32-bit TIFF of 0..255, read on a 0..65535 scale,
    had "no ink"; a float TIFF past 255 was clipped flat."""
    top = float(pixels.max()) if pixels.size else 1.0
    white = next((value for value in whites if top <= value), top)
    return np.clip(pixels / np.float32(white), 0, 1)
