"""Side effects on real sessions, and generated clinics for the signal and report tests (issue 8).

``signed_session`` runs the whole path (prepare → check in through the gate → chart → sign) at a moment in
the past. ``Generated`` builds a clinic of many patients and sessions with bulk inserts, the way the
benchmark's generator does — a session per row, its preparation with the lot it used — so that an outbreak of
the published shape (Paris 2007: 16 infections among 105 patients treated with one multi-injector gun) can be
reproduced in a test; the infections themselves are then recorded through ``safety.services``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role, User
from mesoclinic.clinics.models import Clinic, Device, Room
from mesoclinic.formulary import services as formulary
from mesoclinic.formulary.models import Lot, Preparation, PreparationLine
from mesoclinic.lib.text import fold
from mesoclinic.patients.models import Patient
from mesoclinic.safety import services
from mesoclinic.treatments import services as treatments
from mesoclinic.treatments.models import (
    BodyArea,
    ChartedArea,
    Protocol,
    ProtocolVersion,
    SessionPreparation,
    Technique,
    TreatmentPlan,
    TreatmentSession,
)
from tests.consent_support import give_consent
from tests.factories import ClinicFactory, DeviceFactory, RoomFactory, UserFactory, staff
from tests.treatments_support import Treat, centre, ensure_seed, treat


def moment_days_ago(clinic: Clinic, days: int, hour: int = 10) -> datetime:
    """10:00 clinic time, ``days`` days before today in the clinic."""
    day = clinic.today() - timedelta(days=days)
    return datetime.combine(day, time(hour), tzinfo=clinic.zone)


def ready(days_back: int = 120, **kwargs: Any) -> Treat:
    """treat(), with the plan's consent signed ``days_back`` days ago so that sessions since pass the gate."""
    t = treat(**kwargs)
    give_consent(t.plan, t.practitioner, now=moment_days_ago(t.clinic, days_back + 1))
    return t


def signed_session(t: Treat, days_ago: int, *, area: str = "forehead") -> TreatmentSession:
    """A session ``days_ago`` days before today: prepared, checked in through the gate, charted, signed."""
    moment = moment_days_ago(t.clinic, days_ago)
    preparation = t.formulary.prepare(t.patient, now=moment - timedelta(minutes=20))
    session = treatments.session_check_in(
        caller=t.caller(), plan=t.plan, room_id=t.room.pk, device_id=t.device.pk, now=moment
    )
    treatments.session_chart(
        caller=t.caller(),
        session=session,
        chart=treatments.ChartIn(
            areas=[t.chart_area(preparation, area)], room_id=t.room.pk, device_id=t.device.pk
        ),
        now=moment + timedelta(minutes=15),
    )
    return treatments.session_sign(caller=t.caller(), session=session, now=moment + timedelta(minutes=30))


def event(
    t: Treat,
    kind: str = "bruising",
    *,
    onset: date | None = None,
    caller: Caller | None = None,
    **values: Any,
) -> Any:
    """Record a side effect for the treat's patient (by its practitioner unless told)."""
    data = services.EventIn(kind=kind, onset_on=onset or t.clinic.today(), **{"area": "forehead", **values})
    return services.event_record(caller=caller or t.caller(), patient=t.patient, data=data)


def portal_user(patient: Patient) -> User:
    """The patient's portal account (made when missing)."""
    if patient.user_id is None:
        user = UserFactory.create()
        Patient.objects.filter(pk=patient.pk).update(user=user)
        patient.user_id = user.pk
        return user
    return User.objects.get(pk=patient.user_id)


# --- generated clinics --------------------------------------------------------------------------------------


@dataclass
class Generated:
    """A clinic of ``patients`` with bulk-inserted signed sessions. ``sessions_of[patient_id]``: their
    sessions, oldest first, as (session id, day, practitioner id, room id, device id, lot id)."""

    clinic: Clinic
    director: User
    practitioners: list[User]
    rooms: list[Room]
    devices: list[Device]
    lots: list[Lot]
    patients: list[Patient]
    version: ProtocolVersion
    today: date
    sessions_of: dict[int, list[tuple[int, date, int, int, int | None, int]]] = field(default_factory=dict)

    @property
    def caller(self) -> Caller:
        return Caller(user=User.objects.get(pk=self.director.pk))

    def infect(self, patient_id: int, onset: date, *, kind: str = "infection", **values: Any) -> Any:
        patient = Patient.objects.select_related("clinic").get(pk=patient_id)
        return services.event_record(
            caller=self.caller,
            patient=patient,
            data=services.EventIn(kind=kind, onset_on=onset, **values),
            now=datetime.combine(self.today, time(18), tzinfo=self.clinic.zone),
        )


def generate(
    *,
    patients: int,
    sessions_per_patient: int = 2,
    practitioners: int = 4,
    rooms: int = 3,
    devices: int = 3,
    lots: int = 6,
    days_back: int = 160,
    seed: int = 2007,
    assign: Any = None,
    protocols: tuple[str, ...] = ("facial-rejuvenation",),
) -> Generated:
    """Bulk-insert a clinic. ``assign(rng, patient_index, session_index, day) -> dict`` may fix a session's
    ``day``, ``practitioner``, ``room``, ``device`` (an index, or None for no device) and ``lot`` (indexes
    into the generated lists); everything else is drawn from ``seed``."""
    ensure_seed()
    rng = random.Random(seed)
    clinic = ClinicFactory.create()
    director = staff(clinic, Role.MEDICAL_DIRECTOR, first_name="Paul", last_name="Blanc")
    staff_list = [
        staff(clinic, Role.PRACTITIONER, first_name=f"Prac{index}", last_name="Test")
        for index in range(practitioners)
    ]
    room_list = [RoomFactory.create(clinic=clinic, name=f"Room {index + 1}") for index in range(rooms)]
    device_list = [
        DeviceFactory.create(clinic=clinic, identifier=f"GUN-{index + 1}", name=f"Gun {index + 1}")
        for index in range(devices)
    ]
    today = clinic.today()
    setup = _formulary(clinic, director, lots, today - timedelta(days=days_back + 30))
    version_of = {
        code: ProtocolVersion.objects.filter(protocol=Protocol.objects.get(clinic__isnull=True, code=code))
        .order_by("-number")
        .first()
        for code in protocols
    }
    now = timezone.now()
    people = Patient.objects.bulk_create(
        [
            Patient(
                clinic=clinic,
                record_number=f"P-{index + 1:06d}",
                given_name="Gen",
                family_name=f"Patient{index:05d}",
                family_name_folded=fold(f"Patient{index:05d}"),
                given_name_folded="gen",
                date_of_birth=date(1980, 1, 1) + timedelta(days=index % 5000),
                sex=Patient.Sex.FEMALE,
            )
            for index in range(patients)
        ]
    )
    plans = TreatmentPlan.objects.bulk_create(
        [
            TreatmentPlan(
                clinic=clinic,
                patient=patient,
                protocol_version=version_of[protocols[index % len(protocols)]],
                indication=version_of[protocols[index % len(protocols)]].protocol.indication,  # type: ignore[union-attr]
                planned_sessions=max(sessions_per_patient, 1),
                status=TreatmentPlan.Status.ACTIVE,
                created_at=now,
                created_by=director,
                activated_at=now,
                activated_by=director,
            )
            for index, patient in enumerate(people)
        ]
    )
    rows: list[dict[str, Any]] = []
    for index, plan in enumerate(plans):
        days = sorted(rng.sample(range(1, days_back), sessions_per_patient), reverse=True)
        for number, back in enumerate(days, start=1):
            day = today - timedelta(days=back)
            row: dict[str, Any] = {
                "plan": plan,
                "number": number,
                "day": day,
                "practitioner": rng.randrange(practitioners),
                "room": rng.randrange(rooms),
                "device": rng.randrange(1, devices) if devices > 1 and rng.random() < 0.7 else None,
                "lot": min(lots - 1, int((days_back - back) / days_back * lots)),
            }
            if assign is not None:
                row.update(assign(rng, index, number - 1, day) or {})
            rows.append(row)
    technique = Technique.objects.get(code="nappage")
    forehead = BodyArea.objects.get(code="forehead")
    sessions = TreatmentSession.objects.bulk_create(
        [
            TreatmentSession(
                clinic=clinic,
                plan=row["plan"],
                patient_id=row["plan"].patient_id,
                number=row["number"],
                session_date=row["day"],
                practitioner=staff_list[row["practitioner"]],
                room=room_list[row["room"]],
                device=device_list[row["device"]] if row["device"] is not None else None,
                status=TreatmentSession.Status.SIGNED,
                checked_in_at=datetime.combine(row["day"], time(10), tzinfo=clinic.zone),
                checked_in_by=director,
                charted_at=datetime.combine(row["day"], time(10, 20), tzinfo=clinic.zone),
                charted_by=staff_list[row["practitioner"]],
                signed_at=datetime.combine(row["day"], time(10, 30), tzinfo=clinic.zone),
                signed_by=staff_list[row["practitioner"]],
            )
            for row in rows
        ]
    )
    preparations = Preparation.objects.bulk_create(
        [
            Preparation(
                clinic=clinic,
                patient_id=session.patient_id,
                formula_version=setup.version,
                prepared_at=session.checked_in_at - timedelta(minutes=15),
                prepared_by=director,
                total_volume_ml=Decimal("2"),
            )
            for session in sessions
        ]
    )
    PreparationLine.objects.bulk_create(
        [
            PreparationLine(preparation=preparation, lot=setup.lots[row["lot"]], volume_ml=Decimal("2"))
            for preparation, row in zip(preparations, rows, strict=True)
        ]
    )
    SessionPreparation.objects.bulk_create(
        [
            SessionPreparation(session=session, preparation=preparation)
            for session, preparation in zip(sessions, preparations, strict=True)
        ]
    )
    ChartedArea.objects.bulk_create(
        [
            ChartedArea(
                session=session,
                area=forehead,
                technique=technique,
                depth_mm=Decimal("1.5"),
                points=[centre(forehead)],
                injections=20,
                total_volume_ml=Decimal("0.4"),
                preparation=preparation,
            )
            for session, preparation in zip(sessions, preparations, strict=True)
        ]
    )
    generated = Generated(
        clinic=clinic,
        director=director,
        practitioners=staff_list,
        rooms=room_list,
        devices=device_list,
        lots=setup.lots,
        patients=people,
        version=next(iter(version_of.values())),  # type: ignore[arg-type]
        today=today,
    )
    for session, row in zip(sessions, rows, strict=True):
        generated.sessions_of.setdefault(session.patient_id, []).append(
            (
                session.pk,
                row["day"],
                staff_list[row["practitioner"]].pk,
                room_list[row["room"]].pk,
                device_list[row["device"]].pk if row["device"] is not None else None,
                setup.lots[row["lot"]].pk,
            )
        )
    return generated


@dataclass
class _Formulary:
    version: Any
    lots: list[Lot]


def _formulary(clinic: Clinic, director: User, count: int, received_on: date) -> _Formulary:
    """A formula and ``count`` lots of one product, received long enough ago (through the services)."""
    from tests.formulary_setup import ingredient, product

    caller = Caller(user=director)
    formula = formulary.formula_create(
        caller=caller,
        clinic=clinic,
        name="Generated revitalising",
        content=formulary.FormulaContent(
            components=[formulary.ComponentIn(ingredient("hyaluronic-acid").pk, "3", "mg/mL")],
            total_volume_ml="2",
            indications=["rejuvenation"],
            diluent_id=ingredient("sodium-chloride").pk,
        ),
    )
    item = product(caller, clinic, "Generated HA 2 mL", "hyaluronic-acid", "2", multi=False)
    lots = [
        formulary.lot_receive(
            caller=caller,
            product=item,
            number=f"GEN-{index + 1}",
            expires_on=received_on + timedelta(days=900),
            received_on=received_on,
            received_vials=5000,
        )
        for index in range(count)
    ]
    return _Formulary(formulary.current_version(formula), lots)
