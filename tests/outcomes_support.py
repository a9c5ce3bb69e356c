"""Outcomes test helpers: a treated patient (tests.treatments_support.treat), signed sessions in the past,
measurements recorded through the service, and real photos made with Pillow (with GPS in their EXIF)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone
from PIL import Image

from mesoclinic.accounts.actors import Caller
from mesoclinic.outcomes import services
from mesoclinic.outcomes.models import Assessment, Photo
from mesoclinic.treatments.models import TreatmentPlan, TreatmentSession
from tests.treatments_support import Treat, treat

GPS_IFD = 0x8825
GPS = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 7.0), 5: 0, 6: 35.0}


def today(t: Treat) -> date:
    return timezone.localdate(timezone=t.clinic.zone)


def outcome_treat(
    protocol_code: str = "localized-fat",
    *,
    sessions: int = 6,
    areas: tuple[str, ...] = ("flank-left", "flank-right"),
    **kwargs: Any,
) -> Treat:
    """An active plan. Outcomes never checks a patient in (signed sessions are written as rows), so the
    treatment consent is left out by default: R-REG refuses a consent for injection lipolysis (the
    localized-fat template) in the factories' default jurisdiction, FR."""
    kwargs.setdefault("consented", False)
    return treat(protocol_code=protocol_code, sessions=sessions, areas=areas, **kwargs)


def long_plan(t: Treat, sessions: int = 15) -> TreatmentPlan:
    """A plan of ``sessions`` sessions (the seeded localized-fat template stops at 10): the clinic copies the
    template, revises it to allow 15 — seed 004 says "a series of 3 to 15 visits" — and plans with it. The
    Treat's plan becomes the new one."""
    from dataclasses import replace

    from mesoclinic.treatments import services as treatments
    from mesoclinic.treatments.models import Protocol

    director = Caller(user=t.director)
    template = Protocol.objects.get(clinic__isnull=True, code="localized-fat")
    copy = treatments.protocol_copy(caller=director, clinic=t.clinic, protocol=template, name="Long series")
    content = treatments.content_of(treatments.current_version(copy))
    treatments.protocol_revise(
        caller=director, protocol=copy, content=replace(content, sessions_max=sessions)
    )
    practitioner = t.caller()
    plan = treatments.plan_create(
        caller=practitioner,
        patient=t.patient,
        protocol=copy,
        data=treatments.PlanIn(
            planned_sessions=sessions,
            areas=["flank-left", "flank-right"],
            formula_ids=[t.formulary.formula.pk],
        ),
    )
    t.plan = treatments.plan_activate(caller=practitioner, plan=plan)
    return t.plan


def signed_sessions(
    t: Treat, count: int, *, every_days: int = 7, plan: TreatmentPlan | None = None
) -> list[TreatmentSession]:
    """``count`` signed sessions of the plan, ``every_days`` apart, the last one yesterday. Written as rows
    (the charting walk is tested in the treatments tests): outcomes only needs that they exist and are
    signed."""
    plan = plan or t.plan
    start = today(t) - timedelta(days=every_days * count)
    done = TreatmentSession.objects.filter(plan=plan).count()
    made: list[TreatmentSession] = []
    for index in range(count):
        on = start + timedelta(days=every_days * index)
        moment = datetime.combine(on, time(10, 0), tzinfo=t.clinic.zone)
        made.append(
            TreatmentSession.objects.create(
                clinic=t.clinic,
                plan=plan,
                patient=plan.patient,
                number=done + index + 1,
                session_date=on,
                practitioner=t.practitioner,
                status=TreatmentSession.Status.SIGNED,
                checked_in_at=moment,
                checked_in_by=t.practitioner,
                charted_at=moment,
                charted_by=t.practitioner,
                signed_at=moment + timedelta(minutes=30),
                signed_by=t.practitioner,
            )
        )
    return made


def m(code: str, value: Any = None, **kwargs: Any) -> services.MeasurementIn:
    return services.MeasurementIn(code=code, value=value, **kwargs)


def record(
    t: Treat,
    kind: str,
    *measurements: services.MeasurementIn,
    session: TreatmentSession | None = None,
    taken_on: date | None = None,
    reason: str = "",
    plan: TreatmentPlan | None = None,
) -> Assessment:
    return services.assessment_record(
        caller=t.caller(),
        plan=plan or TreatmentPlan.objects.get(pk=t.plan.pk),
        data=services.AssessmentIn(
            kind=kind,
            session_id=session.pk if session else None,
            taken_on=taken_on,
            measurements=list(measurements),
            reason=reason,
        ),
    )


def jpeg(
    *, size: tuple[int, int] = (640, 480), colour: tuple[int, int, int] = (190, 140, 120), gps: bool = True
) -> bytes:
    """A real JPEG; with GPS coordinates, a camera make and a date in its EXIF (as a phone writes them)."""
    picture = Image.new("RGB", size, colour)
    for x in range(0, size[0], 40):  # some structure, so the encoder has work to do
        for y in range(size[1]):
            picture.putpixel((x, y), (20, 20, 20))
    exif = Image.Exif()
    exif[0x010F] = "TabletCam"  # Make
    exif[0x0132] = "2026:01:02 10:11:12"  # DateTime
    if gps:
        exif[GPS_IFD] = GPS
    out = io.BytesIO()
    picture.save(out, format="JPEG", exif=exif.tobytes(), quality=92)
    return out.getvalue()


def png(*, size: tuple[int, int] = (320, 240), alpha: bool = False) -> bytes:
    from PIL import PngImagePlugin

    picture = Image.new("RGBA" if alpha else "RGB", size, (10, 120, 200, 128) if alpha else (10, 120, 200))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "patient Jane Doe, 12 rue de la Paix")
    out = io.BytesIO()
    picture.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def upload(
    t: Treat,
    assessment: Assessment,
    view: str = "abdomen-front",
    data: bytes | None = None,
    name: str = "IMG_1.JPG",
) -> Photo:
    return services.photo_upload(
        caller=t.caller(),
        assessment=assessment,
        view=view,
        data=data if data is not None else jpeg(),
        name=name,
    )


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def values(rows: Sequence[Any]) -> list[str]:
    return [str(row) for row in rows]
