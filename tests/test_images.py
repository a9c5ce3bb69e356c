"""mesoclinic.lib.images (targets.md #6): uploads validated, re-encoded and stripped of metadata; stored under
a random name through the storage API. Real Pillow images, real default storage (the var dir)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from mesoclinic.lib import images
from mesoclinic.lib.images import ImageRejected, clean_image, random_name, store_image, thumbnail


def jpeg(size: tuple[int, int] = (64, 48), *, exif: bool = True, orientation: int | None = None) -> bytes:
    picture = Image.new("RGB", size, (200, 120, 90))
    picture.putpixel((0, 0), (0, 0, 255))  # a marker to see the rotation
    data = Image.Exif()
    if exif:
        data[0x010F] = "PhoneMaker"  # Make
        data[0xA431] = "SERIAL-123456"  # BodySerialNumber
        data[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}  # GPS
    if orientation is not None:
        data[0x0112] = orientation
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", exif=data, comment=b"secret comment")
    return buffer.getvalue()


def png(mode: str = "RGB", size: tuple[int, int] = (20, 10)) -> bytes:
    meta = PngInfo()
    meta.add_text("Author", "Dr Secret")
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG", pnginfo=meta)
    return buffer.getvalue()


def webp() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buffer, format="WEBP")
    return buffer.getvalue()


def test_a_jpeg_is_re_encoded_without_exif_gps_or_comment() -> None:
    original = jpeg()
    assert b"SERIAL-123456" in original and b"secret comment" in original
    clean = clean_image(original, name="IMG_0042.JPG")
    assert (clean.content_type, clean.extension, clean.width, clean.height) == ("image/jpeg", ".jpg", 64, 48)
    for secret in (b"SERIAL-123456", b"PhoneMaker", b"secret comment", b"Exif"):
        assert secret not in clean.content
    kept = Image.open(io.BytesIO(clean.content))
    assert kept.format == "JPEG" and len(kept.getexif()) == 0 and "icc_profile" not in kept.info
    assert clean.content != original and len(clean.sha256) == 64


def test_the_exif_orientation_is_applied_before_it_is_dropped() -> None:
    clean = clean_image(jpeg((60, 20), orientation=6))  # 6: rotate 90 degrees clockwise to display
    assert (clean.width, clean.height) == (20, 60)


def test_a_png_stays_a_png_without_its_text_chunks() -> None:
    clean = clean_image(png())
    assert (clean.content_type, clean.extension) == ("image/png", ".png")
    assert b"Dr Secret" not in clean.content and b"tEXt" not in clean.content
    transparent = clean_image(png("RGBA"))
    assert Image.open(io.BytesIO(transparent.content)).mode == "RGBA"


def test_a_webp_is_accepted_and_becomes_a_jpeg() -> None:
    clean = clean_image(webp(), name="photo.webp")
    assert clean.content_type == "image/jpeg" and (clean.width, clean.height) == (16, 16)


def test_uploaded_files_and_streams_are_read_from_the_start() -> None:
    upload = SimpleUploadedFile("photo.jpg", jpeg(), content_type="text/html")  # the client's type: ignored
    upload.read(10)
    assert clean_image(upload, name=upload.name or "").content_type == "image/jpeg"
    assert clean_image(io.BytesIO(png())).content_type == "image/png"
    assert clean_image(bytearray(png())).content_type == "image/png"


def _refused(data: object, name: str = "photo.jpg", **limits: int) -> str:
    with pytest.raises(ImageRejected) as caught:
        clean_image(data, name=name, **limits)
    assert caught.value.messages == [str(caught.value.message)]
    return str(caught.value.message)


def test_empty_and_too_large_files_are_refused() -> None:
    assert "empty" in _refused(b"")
    assert "too large" in _refused(jpeg(), max_bytes=100)
    assert "too large" in _refused(io.BytesIO(b"\xff\xd8\xff" + b"\0" * 3000), max_bytes=2048)


@pytest.mark.parametrize("name", ["x.svg", "page.HTML", "run.exe", "doc.pdf", "a.php", "b.js", "photo.svgz"])
def test_active_extensions_are_refused_whatever_the_content(name: str) -> None:
    assert "not a JPEG" in _refused(jpeg(), name=name)


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b"<!doctype html><html></html>",
        b"MZ\x90\x00" + b"\x00" * 200,
        b"GIF89a" + b"\x00" * 100,
        b"%PDF-1.7\n" + b"\x00" * 100,
        b"RIFF\x00\x00\x00\x00WAVE",
    ],
)
def test_anything_that_is_not_a_jpeg_png_or_webp_is_refused(data: bytes) -> None:
    assert "not a JPEG" in _refused(data)


def test_a_text_file_stream_is_refused() -> None:
    assert "as a file" in _refused(io.StringIO("hello"))


def test_markup_inside_an_image_is_refused() -> None:
    picture = Image.new("RGB", (8, 8))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", comment=b"<script>alert(1)</script>")
    assert "markup" in _refused(buffer.getvalue())
    assert "markup" in _refused(jpeg(exif=False)[:-2] + b"<?php system($x); ?>" + b"\xff\xd9")


def test_data_after_the_end_of_the_picture_is_refused_but_padding_is_tolerated() -> None:
    good = jpeg()
    assert "after the picture" in _refused(good + b"PK\x03\x04" + b"\x00" * 100)  # a zip appended
    assert "after the picture" in _refused(png() + b"\x00" * 64, name="x.png")
    assert clean_image(good + b"\x00" * 8).content_type == "image/jpeg"


def test_a_truncated_or_corrupt_picture_is_refused() -> None:
    good = jpeg((200, 200))
    assert "damaged" in _refused(good[: len(good) // 2] + b"\xff\xd9")
    broken = bytearray(png(size=(50, 50)))
    at = broken.index(b"IDAT") + 8
    broken[at : at + 20] = b"\x00" * 20  # the compressed pixels (the chunk's CRC no longer matches)
    assert "damaged" in _refused(bytes(broken), name="x.png")


def test_a_pixel_flood_is_refused_from_the_header() -> None:
    buffer = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buffer, format="PNG")
    assert "too many pixels" in _refused(buffer.getvalue(), name="flood.png")
    assert "too many pixels" in _refused(jpeg((100, 100)), max_pixels=5000)
    assert Image.MAX_IMAGE_PIXELS != 5000  # the global limit is restored


def test_thumbnail_is_a_smaller_clean_copy() -> None:
    big = clean_image(jpeg((1000, 500)))
    small = thumbnail(big)
    assert (small.width, small.height) == (320, 160) and small.content_type == "image/jpeg"
    assert thumbnail(clean_image(png("RGBA", (640, 640))), max_px=64).content_type == "image/png"


def test_store_image_saves_under_a_random_name_in_the_folder() -> None:
    clean = clean_image(jpeg())
    first = store_image(clean, folder="/tests/images/")
    second = store_image(clean, folder="tests/images")
    try:
        assert re.fullmatch(r"tests/images/[0-9a-f]{32}\.jpg", first) and first != second
        with images.open_stored(first) as stored:
            assert stored.read() == clean.content
    finally:
        default_storage.delete(first)
        default_storage.delete(second)
    assert re.fullmatch(r"a/b/[0-9a-f]{32}\.png", random_name("/a/b/", ".png"))


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_are_refused_or_answered_as_a_clean_picture(data: bytes) -> None:
    try:
        clean = clean_image(b"\xff\xd8\xff" + data, name="fuzz.jpg")
    except ImageRejected as rejected:
        assert str(rejected.message)
    else:
        assert Image.open(io.BytesIO(clean.content)).format in ("JPEG", "PNG")
