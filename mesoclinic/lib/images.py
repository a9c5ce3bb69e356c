"""Uploaded photos, made safe to keep and to show (targets.md #6): validate, re-encode, strip metadata.

Any app that accepts a picture from a user (a side-effect photo in the portal, an outcome photo from a
standard view) calls ``clean_image`` with the raw upload and stores what it answers — never the bytes it was
given:

    from mesoclinic.lib.images import ImageRejected, clean_image, random_name, store_image, thumbnail

    try:
        image = clean_image(upload, name=upload.name)   # an UploadedFile, a file object or bytes
        small = thumbnail(image)                        # optional: a re-encoded copy at most 320 px wide
    except ImageRejected as rejected:                   # a ValidationError: a clear message for the field
        form.add_error("photo", rejected.message)
    else:
        name = store_image(image, folder=f"safety/photos/{clinic.pk}")   # default_storage, random name
        # or: default_storage.save(random_name(folder, image.extension), ContentFile(image.content))

What ``clean_image`` refuses (each with a message that says why, nothing written):
- more than ``max_bytes`` (10 MB by default) or an empty file;
- a client file name with an extension of active content (``.svg``, ``.html``, ``.exe``…), whatever it holds;
- anything whose first bytes are not a JPEG, PNG or WebP signature (a renamed executable, HTML, SVG, PDF…):
  the client's file name and content type are never trusted;
- markup or script anywhere in the file (``<script``, ``<svg``, ``<html``, ``<?php``…) and data after the
  image's end marker (a JPEG or PNG with an archive or a page appended: a polyglot);
- more than ``max_pixels`` pixels (40 megapixels by default), checked from the header before decoding, and
  Pillow's own decompression-bomb guard turned into a refusal (a pixel flood);
- a file Pillow cannot verify, or cannot decode completely a second time (truncated or corrupt data).

What it answers: the picture decoded and encoded again by Pillow — JPEG (quality 90) for photographs, PNG when
the source is a PNG or has transparency — turned upright by its EXIF orientation first, and with no EXIF, GPS,
XMP, ICC or comment data left in it. ``store_image`` saves it through Django's storage API
(``default_storage``, MEDIA_ROOT under the var dir, or S3 through django-storages) under a random name in the
folder given (``random_name``); the upload's own name is never used, so ``../`` tricks cannot reach the file
system.

Serve stored images only through a view that authorises the reader, with ``Cache-Control: no-store`` and
``X-Content-Type-Options: nosniff`` (the project's middleware sets both) and the content type stored with it.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import warnings
from dataclasses import dataclass
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
JPEG_QUALITY = 90

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
)
# Markup that a browser (or a PHP server) would act on if the file were ever served as something else.
_MARKUP = (b"<script", b"<svg", b"<html", b"<!doctype", b"<?php", b"<?xml", b"<iframe", b"<body", b"<object")
_PNG_END = b"IEND\xaeB`\x82"
_JPEG_END = b"\xff\xd9"
# A few padding bytes after the end marker are common (some cameras pad to a block); more is a payload.
_TRAILING_TOLERANCE = 16


class ImageRejected(ValidationError):
    """The upload is not a picture we keep; ``message`` says why, for the form field or the API."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_image")
        self.message = message


@dataclass(frozen=True)
class CleanImage:
    content: bytes
    content_type: str  # "image/jpeg" or "image/png"
    extension: str  # ".jpg" or ".png"
    width: int
    height: int
    sha256: str  # of the re-encoded bytes


def _read(upload: Any, max_bytes: int) -> bytes:
    if isinstance(upload, bytes | bytearray | memoryview):
        data = bytes(upload)
    else:
        stream: IO[bytes] = upload
        if hasattr(stream, "seek"):
            stream.seek(0)
        data = stream.read(max_bytes + 1)
        if isinstance(data, str):
            raise ImageRejected(_("Send the picture as a file."))
    if not data:
        raise ImageRejected(_("The file is empty."))
    if len(data) > max_bytes:
        raise ImageRejected(
            _("The picture is too large: at most %(size)d MB.") % {"size": max_bytes // (1024 * 1024)}
        )
    return data


def _format_of(data: bytes) -> str:
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    raise ImageRejected(_("This is not a JPEG, PNG or WebP picture."))


def _trailing_bytes(data: bytes, image_format: str) -> int:
    """Bytes after the image's logical end (PNG: the IEND chunk; JPEG: the last EOI marker)."""
    if image_format == "PNG":
        end = data.rfind(_PNG_END)
        return len(data) - (end + len(_PNG_END)) if end >= 0 else len(data)
    if image_format == "JPEG":
        end = data.rfind(_JPEG_END)
        return len(data) - (end + len(_JPEG_END)) if end >= 0 else len(data)
    riff_size = int.from_bytes(data[4:8], "little") + 8
    return len(data) - riff_size


_ACTIVE_EXTENSIONS = frozenset(
    {
        "svg", "svgz", "html", "htm", "xhtml", "xml", "js", "mjs", "php", "phtml", "exe", "dll", "com", "bat",
        "cmd", "sh", "ps1", "jar", "msi", "scr", "pdf", "swf",
    }
)  # fmt: skip
THUMBNAIL_PX = 320


def clean_image(
    upload: Any, *, name: str = "", max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS
) -> CleanImage:
    """The upload validated and re-encoded without metadata (see the module's docstring), or ImageRejected.
    ``name`` is the client's file name: only checked, never used to store."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension in _ACTIVE_EXTENSIONS:
        raise ImageRejected(_("This is not a JPEG, PNG or WebP picture."))
    data = _read(upload, max_bytes)
    image_format = _format_of(data)
    lowered = data.lower()
    if any(marker in lowered for marker in _MARKUP):
        raise ImageRejected(_("The file contains markup or script: it is not kept."))
    if _trailing_bytes(data, image_format) > _TRAILING_TOLERANCE:
        raise ImageRejected(_("The file has data after the picture: it is not kept."))
    previous_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = max_pixels
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[image_format]) as probe:
                width, height = probe.size
                if width < 1 or height < 1 or width * height > max_pixels:
                    raise ImageRejected(_("The picture has too many pixels."))
                probe.verify()
            # verify() leaves the image unusable: decode it again, completely.
            with Image.open(io.BytesIO(data), formats=[image_format]) as decoded:
                decoded.load()
                upright = ImageOps.exif_transpose(decoded)
                return _encode(upright, image_format)
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(_("The picture has too many pixels.")) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected(_("The picture is damaged or not a picture.")) from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit


def _encode(image: Image.Image, source_format: str) -> CleanImage:
    transparent = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    keep_png = source_format == "PNG" or transparent
    # A new image from the pixels alone: nothing of the source's info (EXIF, XMP, ICC, text) comes along.
    pixels = image.convert("RGBA" if transparent else "RGB")
    bare = Image.new(pixels.mode, pixels.size)
    bare.paste(pixels)
    buffer = io.BytesIO()
    if keep_png:
        bare.save(buffer, format="PNG", optimize=True)
        content_type, extension = "image/png", ".png"
    else:
        bare.save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
        content_type, extension = "image/jpeg", ".jpg"
    content = buffer.getvalue()
    return CleanImage(
        content=content,
        content_type=content_type,
        extension=extension,
        width=bare.width,
        height=bare.height,
        sha256=hashlib.sha256(content).hexdigest(),
    )


def thumbnail(image: CleanImage, *, max_px: int = THUMBNAIL_PX) -> CleanImage:
    """A smaller copy of a cleaned image (at most ``max_px`` on its longer side), encoded the same way."""
    with Image.open(io.BytesIO(image.content)) as source:
        source.load()
        copy = source.copy()
    copy.thumbnail((max_px, max_px))
    return _encode(copy, "PNG" if image.content_type == "image/png" else "JPEG")


def random_name(folder: str, extension: str) -> str:
    """A storage name nobody can guess or steer: ``folder/<32 hex digits><extension>``."""
    return f"{folder.strip('/')}/{secrets.token_hex(16)}{extension}"


def store_image(image: CleanImage, *, folder: str) -> str:
    """Save through ``default_storage`` under a random name in ``folder``; answers the stored name."""
    return default_storage.save(random_name(folder, image.extension), ContentFile(image.content))


def open_stored(name: str) -> IO[bytes]:
    """A stored image for a view to stream (after it has authorised the reader)."""
    stream: IO[bytes] = default_storage.open(name, "rb")
    return stream
