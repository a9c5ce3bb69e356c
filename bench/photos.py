"""The generator's photos family (mesoclinic.outcomes): standardised outcome photos, files included.

For a third of the plans whose protocol asks for photos (every seeded protocol does), the photos the
practitioner takes at the **baseline**, at every third session and at the last one: one **Photo** per view
the plan's indication asks for (``outcomes.rules.photo_views``: six body views for localized fat, four
thigh views for cellulite, five face views for the face, three scalp views for hair loss), uploaded by the
assessment's rater in the minutes before the assessment was recorded; 2 % of them retaken (the first take
kept, no longer current, as ``outcomes.services.photo_upload`` keeps it). The plan's **PhotoConsent**
(given for 70 % of them), recorded with the baseline.

The files: a handful of deterministic 320×240 pictures drawn with Pillow once per run (a silhouette on a
backdrop, a different tone and framing each), passed through the application's own pipeline
(``lib.images.clean_image`` then ``thumbnail``: re-encoded JPEG, no EXIF) so that the stored content type,
size, dimensions and SHA-256 are what the upload service would store. Each photo gets its image and
thumbnail under the default storage at the path the service uses (``outcomes/photos/<clinic id>/<32 hex
digits>.jpg``, the name derived from the seed, the photo's id and its picture instead of
``secrets.token_hex``, so that it is deterministic and the same name always holds the same bytes). On a file
system storage the first file of each picture is written and the others are hard links to it (a link costs
a directory entry, not 4 KB of disk: at chain scale the photos would otherwise fill gigabytes); on any other
storage each file is saved through the storage API. Reading, serving or deleting one file never affects
another.

Built in this process from the assessments the outcomes family wrote (one query per clinic). No audit rows.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from PIL import Image, ImageDraw, ImageFilter

from bench.messages import Epoch
from bench.rows import SECONDS_PER_DAY, stamp_text
from mesoclinic.lib.images import CleanImage, clean_image, thumbnail
from mesoclinic.outcomes import rules as outcome_rules
from mesoclinic.outcomes.models import Assessment, Photo, PhotoConsent
from mesoclinic.outcomes.services import PHOTO_PREFIX
from mesoclinic.treatments.models import ProtocolVersion, TreatmentPlan

if TYPE_CHECKING:
    from bench.generate import ClinicData, Context, Counts

FIELDS_PHOTO = (
    "id",
    "clinic",
    "plan",
    "patient",
    "assessment",
    "view",
    "image",
    "thumbnail",
    "content_type",
    "width_px",
    "height_px",
    "size_bytes",
    "sha256",
    "is_current",
    "uploaded_at",
    "uploaded_by",
)
FIELDS_CONSENT = ("plan", "given", "recorded_at", "recorded_by")
PHOTO_PLAN_SHARE = 1 / 3
EVERY = 3  # photos at the baseline, every third session and the last one
RETAKE_SHARE = 0.02
CONSENT_SHARE = 0.7
VARIANTS = 8
WIDTH, HEIGHT = 320, 240
_UNIX_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class Picture:
    """One generated picture as the upload service stores it: the cleaned image and its thumbnail."""

    image: CleanImage
    thumb: CleanImage


def _raw_picture(index: int) -> bytes:
    """A camera-like JPEG of a silhouette on a backdrop: tone, framing and light differ with ``index``."""
    backdrop = (212 - 9 * index, 220 - 5 * index, 228 - 3 * index)
    image = Image.new("RGB", (WIDTH, HEIGHT), backdrop)
    draw = ImageDraw.Draw(image)
    for row in range(0, HEIGHT, 4):  # a soft vertical light gradient
        shade = int(18 * row / HEIGHT)
        draw.rectangle((0, row, WIDTH, row + 3), fill=tuple(max(0, c - shade) for c in backdrop))
    skin = (224 - 11 * index, 182 - 9 * index, 160 - 8 * index)
    left = 90 + 7 * (index % 4)
    draw.ellipse((left, 28 + 3 * index, left + 130 - 4 * index, 228), fill=skin)
    draw.ellipse((left + 30, 70, left + 95, 120), fill=tuple(c - 14 for c in skin))
    buffer = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(3)).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def pictures(count: int = VARIANTS) -> list[Picture]:
    """The generated pictures, through the application's own validation and re-encoding."""
    out = []
    for index in range(count):
        image = clean_image(_raw_picture(index), name=f"camera-{index}.jpg")
        out.append(Picture(image=image, thumb=thumbnail(image)))
    return out


def stored_name(stream: str, photo_id: int, variant: int, kind: str, clinic_id: int) -> str:
    """Where the service would store the file (``lib.images.random_name``'s shape), named from the seed, the
    photo and its picture: a name always holds the same bytes, whichever data set wrote it."""
    token = hashlib.sha256(f"{stream}:{photo_id}:{variant}:{kind}".encode()).hexdigest()[:32]
    return f"{PHOTO_PREFIX}/{clinic_id}/{token}.jpg"


class Files:
    """Writes the photos' files: the first of each picture through the storage, the others hard-linked to
    it when the storage is a file system (see the module's docstring)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.first: dict[tuple[int, str], str] = {}  # (picture, image|thumb) → the path written
        self.folders: dict[str, str] = {}  # storage folder → its path
        try:
            storage.path(PHOTO_PREFIX)
        except NotImplementedError:
            self.local = False
        else:
            self.local = True

    def put(self, name: str, key: tuple[int, str], content: bytes) -> None:
        if not self.local:
            if self.storage.exists(name):
                self.storage.delete(name)
            self.storage.save(name, ContentFile(content))
            return
        folder, _slash, filename = name.rpartition("/")
        directory = self.folders.get(folder)
        if directory is None:
            directory = self.folders[folder] = self.storage.path(folder)
            os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, filename)
        source = self.first.get(key)
        if source is not None:
            try:
                try:
                    os.link(source, path)
                except FileExistsError:  # from a data set of the same seed: the same name, the same picture
                    os.unlink(path)
                    os.link(source, path)
            except OSError:  # the file system's limit of links to one file (65,000 on ext4), or none at all
                pass  # write this one: the next ones link to it
            else:
                return
        if os.path.lexists(path):  # a fresh file, not one linked to older ones
            os.unlink(path)
        with open(path, "wb") as stream:
            stream.write(content)
        self.first[key] = path


def _stamp(unix: int) -> str:
    day, second = divmod(unix, SECONDS_PER_DAY)
    return stamp_text(_UNIX_EPOCH_ORDINAL + day, second)


def clinic_rows(
    ctx: Context, data: ClinicData, generated: list[Picture], files: Files
) -> dict[str, list[tuple[Any, ...]]]:
    """The photos and photo consents of one clinic, with their files written."""
    rng = ctx.rng("photos", data.number)
    rand = rng.random
    clinic_id = data.clinic.pk
    stream = ctx.stream("photos", data.number)
    with_photos = {
        version_id
        for version_id, measures in ProtocolVersion.objects.filter(plans__clinic_id=clinic_id)
        .distinct()
        .values_list("id", "outcome_measures")
        if "photos" in (measures or [])
    }
    chosen: dict[int, tuple[int, tuple[str, ...]]] = {}  # plan → (patient, views)
    for plan, patient, indication, version in (
        TreatmentPlan.objects.filter(clinic_id=clinic_id)
        .order_by("id")
        .values_list("id", "patient_id", "indication", "protocol_version_id")
    ):
        if rand() < PHOTO_PLAN_SHARE and version in with_photos:
            chosen[plan] = (patient, outcome_rules.photo_views(indication))
    timepoints: dict[int, list[tuple[int, int, int, int]]] = {plan: [] for plan in chosen}
    for assessment, plan, after, recorded, recorded_by in (
        Assessment.objects.filter(clinic_id=clinic_id)
        .order_by("plan_id", "after_sessions", "taken_on", "id")
        .values_list("id", "plan_id", "after_sessions", Epoch("recorded_at"), "recorded_by_id")
    ):
        points = timepoints.get(plan)
        if points is not None:
            points.append((assessment, after, recorded, recorded_by))
    consents: list[tuple[Any, ...]] = []
    # (plan, patient, assessment, view, picture, current, uploaded, by): ids are taken once they are counted.
    taken: list[tuple[int, int, int, str, int, bool, int, int]] = []
    n_pictures = len(generated)
    for plan, points in timepoints.items():
        if not points:
            continue
        patient, views = chosen[plan]
        last = points[-1][1]
        base = int(rand() * n_pictures)
        for assessment, after, recorded, recorded_by in points:
            if not (after == 0 or after % EVERY == 0 or after == last):
                continue
            if after == 0:
                consents.append((plan, rand() < CONSENT_SHARE, _stamp(recorded), recorded_by))
            for position, view in enumerate(views):
                uploaded = recorded - (len(views) - position) * 45 - int(rand() * 30)
                variant = (base + position + after) % n_pictures
                if rand() < RETAKE_SHARE:  # the first take kept, no longer current
                    first = (variant + 1) % n_pictures
                    taken.append((plan, patient, assessment, view, first, False, uploaded - 40, recorded_by))
                taken.append((plan, patient, assessment, view, variant, True, uploaded, recorded_by))
    photos: list[tuple[Any, ...]] = []
    for photo_id, (plan, patient, assessment, view, variant, current, uploaded, by) in zip(
        ctx.next_ids(Photo, len(taken)), taken, strict=True
    ):
        picture = generated[variant]
        image_name = stored_name(stream, photo_id, variant, "image", clinic_id)
        thumb_name = stored_name(stream, photo_id, variant, "thumb", clinic_id)
        files.put(image_name, (variant, "image"), picture.image.content)
        files.put(thumb_name, (variant, "thumb"), picture.thumb.content)
        image = picture.image
        photos.append(
            (
                photo_id,
                clinic_id,
                plan,
                patient,
                assessment,
                view,
                image_name,
                thumb_name,
                image.content_type,
                image.width,
                image.height,
                len(image.content),
                image.sha256,
                current,
                _stamp(uploaded),
                by,
            )
        )
    return {"photo": photos, "consent": consents}


def gen_photos(ctx: Context) -> Counts:
    """Outcome photos (rows and files) and photo consents of a third of every clinic's plans."""
    generated = pictures()
    files = Files(default_storage)
    counts = {"photo": 0, "photo consent": 0}
    for data in ctx.clinics:
        out = clinic_rows(ctx, data, generated, files)
        counts["photo"] += ctx.write(Photo, FIELDS_PHOTO, out["photo"])
        counts["photo consent"] += ctx.write(PhotoConsent, FIELDS_CONSENT, out["consent"])
    return counts
