"""The generator's photos and outbox families (bench/photos.py, bench/messages.py): real files the application
opens, messages as the scheduling services make and deliver them, rows that are a function of the seed.
Nothing here measures time."""

from __future__ import annotations

import hashlib
import io
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from django.core.files.storage import default_storage
from PIL import Image
from pytest_django.fixtures import Settings

from bench import messages as bench_messages
from bench import photos as bench_photos
from bench.generate import DEFAULT_AS_OF, generate
from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Membership, Role
from mesoclinic.lib.images import clean_image
from mesoclinic.outcomes import rules as outcome_rules
from mesoclinic.outcomes import services as outcome_services
from mesoclinic.outcomes.models import Assessment, Photo, PhotoConsent
from mesoclinic.scheduling import rules as schedule_rules
from mesoclinic.scheduling import services as schedule_services
from mesoclinic.scheduling.models import (
    PLAN_KINDS,
    REMINDER_KINDS,
    TREATMENT_KINDS,
    Appointment,
    ContactPreference,
    Message,
    MessageAttempt,
    ScheduleSettings,
)
from mesoclinic.treatments.models import TreatmentPlan, TreatmentSession
from tests.conftest import client_for
from tests.test_bench import TINY, _context

pytestmark = pytest.mark.django_db

T = TypeVar("T")
NAME = re.compile(r"outcomes/photos/(\d+)/[0-9a-f]{32}\.jpg")


@pytest.fixture(autouse=True)
def media(settings: Settings, tmp_path: Path) -> Path:
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    return root


def test_generated_photos_are_the_files_the_application_stores_and_shows(media: Path) -> None:
    generate(TINY, seed=3, workers=1)
    photos = list(Photo.objects.select_related("plan", "assessment"))
    plans = TreatmentPlan.objects.count()
    with_photos = {photo.plan_id for photo in photos}
    assert 0.2 * plans < len(with_photos) < 0.5 * plans, "about a third of the plans"
    assert set(PhotoConsent.objects.values_list("plan_id", flat=True)) == with_photos

    # Every photo's files exist where the service keeps them, open with Pillow, carry no metadata, and match
    # the stored content type, dimensions, size and hash; the upload pipeline accepts them as they are.
    checked: set[str] = set()
    for photo in photos:
        name, thumb = str(photo.image.name), str(photo.thumbnail.name)
        match = NAME.fullmatch(name)
        assert match and int(match.group(1)) == photo.clinic_id
        assert NAME.fullmatch(thumb) and thumb != name
        assert (media / name).is_file() and (media / thumb).is_file()
        with default_storage.open(name, "rb") as stream:
            data = stream.read()
        assert len(data) == photo.size_bytes and hashlib.sha256(data).hexdigest() == photo.sha256
        if photo.sha256 in checked:
            continue
        checked.add(photo.sha256)
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and photo.content_type == "image/jpeg"
            assert image.size == (photo.width_px, photo.height_px) == (320, 240)
            assert not image.getexif() and "exif" not in image.info
        with default_storage.open(thumb, "rb") as stream, Image.open(stream) as small:
            assert small.format == "JPEG" and max(small.size) <= 320 and not small.getexif()
        again = clean_image(data, name="photo.jpg")  # the upload pipeline takes it as a camera's
        assert (again.width, again.height, again.content_type) == (320, 240, "image/jpeg")
    assert len(checked) > 1

    # The views the indication asks for, at the baseline, every third session and the last one; one current
    # photo per view and timepoint, uploaded by the assessment's rater before it was recorded.
    by_plan: dict[int, set[int]] = defaultdict(set)
    current = Counter((p.assessment_id, p.view) for p in photos if p.is_current)
    assert set(current.values()) == {1}
    for photo in photos:
        assert photo.view in outcome_rules.photo_views(photo.plan.indication)
        assert photo.patient_id == photo.plan.patient_id == photo.assessment.patient_id
        assert photo.uploaded_by_id == photo.assessment.recorded_by_id
        assert photo.uploaded_at <= photo.assessment.recorded_at
        by_plan[photo.plan_id].add(photo.assessment.after_sessions)
    for plan_id, timepoints in by_plan.items():
        done = Assessment.objects.filter(plan_id=plan_id).values_list("after_sessions", flat=True)
        last = max(done)
        assert timepoints == {n for n in done if n == 0 or n % 3 == 0 or n == last}
    assert any(not p.is_current for p in photos) or len(photos) < 200

    # The progress page's comparison opens for a generated plan, through the real service and view.
    plan = TreatmentPlan.objects.get(pk=max(by_plan, key=lambda pk: len(by_plan[pk])))
    practitioner = Membership.objects.filter(clinic_id=plan.clinic_id, role=Role.PRACTITIONER).first()
    assert practitioner is not None
    progress = outcome_services.progress_of(caller=Caller(user=practitioner.user), plan=plan, audit=False)
    assert progress.baseline is not None and set(progress.photos[progress.baseline.pk]) == set(progress.views)
    assert len(progress.photo_dates) >= 2
    assert not [line for line in progress.due if "photos" in line.lower()]
    client = client_for(practitioner.user)
    page = client.get(f"/outcomes/plans/{plan.pk}/compare/")
    assert page.status_code == 200
    shown = re.findall(r"/outcomes/photos/(\d+)/image", page.content.decode())
    assert len(set(shown)) >= 2
    served = client.get(f"/outcomes/photos/{shown[0]}/image")
    assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"
    assert hashlib.sha256(served.content).hexdigest() == Photo.objects.get(pk=shown[0]).sha256


def _given(value: T | None) -> T:
    assert value is not None
    return value


def test_generated_messages_are_what_the_scheduling_services_make() -> None:
    generate(TINY, seed=3, workers=1)
    midnight = datetime.combine(DEFAULT_AS_OF, datetime.min.time()).replace(tzinfo=UTC)
    messages = list(Message.objects.select_related("appointment", "plan", "patient", "clinic"))
    preferences = {p.patient_id: p for p in ContactPreference.objects.all()}
    assert preferences and any(not p.reminders for p in preferences.values())
    statuses = Counter(m.status for m in messages)
    assert statuses["sent"] > 0.8 * len(messages)
    assert statuses["pending"] and statuses["skipped"] and statuses["cancelled"]
    assert statuses["failed"] < 0.02 * len(messages)
    log: dict[int, list[MessageAttempt]] = defaultdict(list)
    for attempt in MessageAttempt.objects.order_by("at", "id"):
        log[attempt.message_id].append(attempt)
    sessions = defaultdict(list)
    for plan_id, on in TreatmentSession.objects.values_list("plan_id", "session_date"):
        sessions[plan_id].append(on)

    for message in messages:
        zone = message.clinic.zone
        reminder_time = ScheduleSettings.objects.get(clinic_id=message.clinic_id).reminder_time
        # Each message is about an appointment or a plan of its own patient.
        subject = message.appointment or message.plan
        assert subject is not None and subject.patient_id == message.patient_id
        assert subject.clinic_id == message.clinic_id
        attempts = log.get(message.pk, [])
        retried = any(a.outcome == "failed" for a in attempts)
        # Due when the rules say (a retry moves it), created when the booking or the check-in made it.
        appointment = message.appointment
        if appointment is not None and not retried:
            arrived = (
                appointment.checked_in_at if message.kind in ("aftercare", "side_effect_check") else None
            )
            now = arrived or appointment.created_at
            assert message.created_at == now
            assert message.due_at == schedule_rules.appointment_message_due(
                message.kind,
                starts_at=appointment.starts_at,
                ends_at=appointment.ends_at,
                zone=zone,
                now=now,
                reminder_time=reminder_time,
                treatment=appointment.kind in TREATMENT_KINDS,
            )
        if message.kind in PLAN_KINDS and not retried:
            dues = {
                schedule_rules.infection_due(
                    message.kind, last_session_on=on, zone=zone, reminder_time=reminder_time
                )
                for on in sessions[_given(message.plan_id)]
            }
            assert message.due_at in dues
        # Went (or not) as message_deliver decides: the patient's opt-outs, channel and language.
        preference = preferences.get(message.patient_id) or ContactPreference(patient=message.patient)
        choice = schedule_rules.delivery_choice(
            message.kind,
            schedule_rules.Recipient(
                email=message.patient.email,
                phone=message.patient.phone,
                channel=preference.channel,
                reminders=preference.reminders,
                follow_up=preference.follow_up,
            ),
        )
        wanted = preference.reminders if message.kind in REMINDER_KINDS else preference.follow_up
        if message.status == "pending":
            assert message.due_at > midnight - timedelta(minutes=1) and message.sent_at is None
        elif message.status == "cancelled":
            assert appointment is not None and appointment.status in ("cancelled", "no_show")
            assert message.due_at >= _given(appointment.ended_at) - timedelta(minutes=1)
        elif message.status == "skipped":
            assert choice[0] is None and message.detail == choice[1] and not message.sent_at
            assert [a.outcome for a in attempts] == ["skipped"]
        else:
            assert wanted, "nothing goes to a patient who opted out"
            assert (message.channel, message.recipient) == choice
            assert message.language == message.patient.preferred_language
            assert message.attempts == len(attempts) >= 1
            if message.status == "sent":
                sent = _given(message.sent_at)
                assert message.due_at <= sent <= midnight and attempts[-1].outcome == "sent"
            else:
                assert message.status == "failed" and message.attempts == 5
    # Nothing sent to a patient who opted out of that kind of message.
    for patient_id, preference in preferences.items():
        for message in (m for m in messages if m.patient_id == patient_id and m.status == "sent"):
            assert preference.reminders if message.kind in REMINDER_KINDS else preference.follow_up
    # The booked appointments have their reminders waiting.
    booked = Appointment.objects.filter(status="booked")
    assert booked.exists()
    assert Message.objects.filter(appointment__in=booked, kind="day_before", status="pending").exists()

    # A waiting one is delivered by the real service when it falls due.
    waiting = next(
        m
        for m in messages
        if m.status == "pending"
        and m.kind == "day_before"
        and m.patient.email
        and not m.attempts
        and m.patient_id not in preferences  # email (a text message would go to the SMS file backend)
    )
    outcome = schedule_services.message_deliver(
        message_id=waiting.pk, worker="test", now=waiting.due_at + timedelta(seconds=5)
    )
    assert outcome in ("sent", "skipped")


def test_photo_and_message_rows_are_a_function_of_the_seed() -> None:
    ctx = _context(3, "side effects")
    pictures = bench_photos.pictures()
    files = bench_photos.Files(default_storage)
    ids = dict(ctx._next_id)
    runs = []
    for _ in range(2):
        ctx._next_id = dict(ids)
        runs.append(
            [
                (bench_photos.clinic_rows(ctx, data, pictures, files), bench_messages.clinic_rows(ctx, data))
                for data in ctx.clinics
            ]
        )
    assert runs[0] == runs[1]
    assert all(photos["photo"] and messages["message"] for photos, messages in runs[0])
    assert [p.image.sha256 for p in pictures] == [p.image.sha256 for p in bench_photos.pictures()]
    ctx.seed = 4
    ctx._next_id = dict(ids)
    other = bench_photos.clinic_rows(ctx, ctx.clinics[0], pictures, files)
    assert other["photo"] != runs[0][0][0]["photo"], "another seed, other photos"
    assert bench_messages.clinic_rows(ctx, ctx.clinics[0])["message"] != runs[0][0][1]["message"]
