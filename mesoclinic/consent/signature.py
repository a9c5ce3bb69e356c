"""The drawn signature: validated like any upload (targets.md #6) and re-encoded, so that what is stored is a
plain PNG of the strokes and nothing else (no metadata, no trailing bytes, no second file format).

Pure: bytes or a ``data:image/png;base64,`` URL in, clean PNG bytes out or :class:`SignatureProblem`."""

from __future__ import annotations

import base64
import binascii
import io
import math
import random
import warnings

import numpy as np
from django.utils.translation import gettext as _
from PIL import Image, ImageDraw

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_URL_PREFIX = "data:image/png;base64,"
MAX_BYTES = 300_000
MAX_WIDTH, MAX_HEIGHT = 2400, 1200
MIN_WIDTH, MIN_HEIGHT = 100, 40
MIN_INK_PIXELS = 40  # a dot or a stray tap is not a signature
MIN_INK_WIDTH = 30  # pixels between the leftmost and the rightmost stroke


class SignatureProblem(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _decode(raw: str | bytes) -> bytes:
    if isinstance(raw, bytes):
        return raw
    text = raw.strip()
    if not text:
        return b""
    if text.startswith("data:"):
        if not text.startswith(DATA_URL_PREFIX):
            raise SignatureProblem(_("The signature must be a PNG image."))
        text = text[len(DATA_URL_PREFIX) :]
    if len(text) > MAX_BYTES * 4 // 3 + 8:
        raise SignatureProblem(_("The signature image is too large."))
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureProblem(_("The signature could not be read: draw it again.")) from None


def _png_end(data: bytes) -> int:
    """The offset just after the IEND chunk, walking the chunks (a polyglot hides a second file after it)."""
    offset = len(PNG_MAGIC)
    while offset + 8 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        offset += 12 + length
        if kind == b"IEND":
            return offset
    raise SignatureProblem(_("The signature image is damaged: draw it again."))


def clean_signature(raw: str | bytes) -> bytes:
    """The signature as clean PNG bytes (RGBA, no metadata), or :class:`SignatureProblem` with a message
    for the signer: empty or blank, not a PNG, damaged, too large, too small, or with hidden content."""
    data = _decode(raw)
    if not data:
        raise SignatureProblem(_("Draw your signature in the box."))
    if len(data) > MAX_BYTES:
        raise SignatureProblem(_("The signature image is too large."))
    if not data.startswith(PNG_MAGIC):
        raise SignatureProblem(_("The signature must be a PNG image."))
    if _png_end(data) != len(data):
        raise SignatureProblem(_("The signature image carries extra content: draw it again."))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format != "PNG":
                    raise SignatureProblem(_("The signature must be a PNG image."))
                width, height = probe.size
                if width > MAX_WIDTH or height > MAX_HEIGHT:
                    raise SignatureProblem(_("The signature image is too large."))
                if width < MIN_WIDTH or height < MIN_HEIGHT:
                    raise SignatureProblem(_("The signature image is too small."))
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                rgba = image.convert("RGBA")
    except SignatureProblem:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise SignatureProblem(_("The signature image is damaged: draw it again.")) from None
    pixels = np.asarray(rgba, dtype=np.uint16)
    luminance = (pixels[..., 0] * 299 + pixels[..., 1] * 587 + pixels[..., 2] * 114) // 1000
    ink = (pixels[..., 3] > 32) & (luminance < 160)
    columns = np.flatnonzero(ink.any(axis=0))
    if int(ink.sum()) < MIN_INK_PIXELS or columns.size == 0 or columns[-1] - columns[0] < MIN_INK_WIDTH:
        raise SignatureProblem(_("Draw your signature in the box."))
    clean = Image.frombytes("RGBA", rgba.size, rgba.tobytes())  # pixels only: no text chunks, no profile
    out = io.BytesIO()
    clean.save(out, format="PNG", optimize=True)
    return out.getvalue()


def sample_signature(seed: int = 1, *, width: int = 600, height: int = 200) -> bytes:
    """A plausible handwritten squiggle (for the demo clinic and tests of the pages that take a signature)."""
    rng = random.Random(seed)  # noqa: S311 (a drawing, not a secret)
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    points = []
    for step in range(60):
        x = 40 + step * (width - 80) / 59
        y = height / 2 + math.sin(step / 3 + rng.random()) * height / 4 + rng.uniform(-8, 8)
        points.append((x, y))
    draw.line(points, fill=(20, 20, 60, 255), width=3, joint="curve")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
