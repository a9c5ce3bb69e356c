"""Every read and write of side effects, follow-ups, signals and the safety report: authorised by the policy,
audited, atomic. Views and the API call these; the rules live in ``safety.rules``.

A side effect is linked, as it is recorded, to the sessions before it (``rules.link_sessions``) and through
them to the lots of their preparations, and to lots the patient received straight from the vial; the link
rows carry the session's day, practitioner, room and device. An infection opens a 12-week watch and
rescans the clinic for signals in the same transaction, so that whoever records the second infection of a
cluster sees the signal at once; ``manage.py safety_scan`` rescans every clinic (daily, from cron)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models import Count, Exists, OuterRef, Prefetch, Q
from django.http import Http404
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import User
from mesoclinic.accounts.policy import Perm, authorize, can, may_see_clinic
from mesoclinic.audit.models import Action
from mesoclinic.audit.services import Actor, audit_record
from mesoclinic.clinics.models import Clinic, Device, Room
from mesoclinic.formulary.models import Lot, PreparationLine, StockMovement
from mesoclinic.lib import images
from mesoclinic.lib.findings import Finding
from mesoclinic.lib.ids import id_or_404
from mesoclinic.patients.models import Patient
from mesoclinic.safety import rules
from mesoclinic.safety.models import (
    AdverseEvent,
    AdverseEventLot,
    AdverseEventSession,
    FollowUp,
    SafetySettings,
    SafetySignal,
)
from mesoclinic.treatments.models import (
    BodyArea,
    ChartedArea,
    SessionPreparation,
    TreatmentPlan,
    TreatmentSession,
)

MAX_TEXT = 4000
MAX_PHOTO_BYTES = 10 * 1024 * 1024  # a phone's photo is 2–8 MB
PHOTO_PREFIX = "safety/events"
LIST_LIMIT = 100
REPORT_DEFAULT_DAYS = 365
SYSTEM_ACTOR = Actor(user_id=None, username="manage.py safety_scan", role="system", ip=None)


def _refuse(field_name: str, message: str) -> ValidationError:
    return ValidationError({field_name: [message]})


def _user(caller: Caller) -> User:
    return cast(User, caller.user)


def _text(value: str, field_name: str, limit: int = MAX_TEXT) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise _refuse(field_name, _("At most %(count)d characters.") % {"count": limit})
    return text


def _is_own(caller: Caller, patient: Patient) -> bool:
    return caller.user.is_authenticated and patient.user_id is not None and patient.user_id == caller.user.pk


def settings_of(clinic: Clinic) -> SafetySettings:
    """The clinic's thresholds, or the defaults (unsaved) when it has set none."""
    found = SafetySettings.objects.filter(clinic=clinic).first()
    return found if found is not None else SafetySettings(clinic=clinic)


def settings_update(*, caller: Caller, clinic: Clinic, values: Mapping[str, Any]) -> SafetySettings:
    authorize(caller.user, Perm.SAFETY_SETTINGS_MANAGE, clinic_id=clinic.pk)
    names = (
        "signal_window_days",
        "signal_min_infections",
        "signal_alpha",
        "baseline_floor_per_1000",
        "small_sample_sessions",
    )
    if unknown := sorted(set(values) - set(names)):
        raise ValidationError({name: [_("Unknown field.")] for name in unknown})
    with transaction.atomic():
        current = SafetySettings.objects.select_for_update().filter(clinic=clinic).first()
        current = current or SafetySettings(clinic=clinic)
        before = {name: str(getattr(current, name)) for name in names}
        for name, value in values.items():
            setattr(current, name, value)
        current.full_clean(exclude=["clinic"])
        current.save()
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.SAFETY_SETTINGS_WRITE,
            clinic_id=clinic.pk,
            obj=current,
            detail={"before": before, "after": {name: str(getattr(current, name)) for name in names}},
        )
    return current


# --- reading events ---------------------------------------------------------------------------------------


def _event_queryset() -> models.QuerySet[AdverseEvent]:
    return AdverseEvent.objects.select_related("patient__clinic", "clinic", "area", "reported_by")


def event_get(
    *, caller: Caller, event_id: int, perm: Perm = Perm.ADVERSE_EVENT_VIEW, audit: bool = True
) -> AdverseEvent:
    """The event, if the caller may act on it: another clinic's or a missing id is a 404, a visible event
    without the right a 403. Audited as a read of the patient's record."""
    event = _event_queryset().filter(pk=id_or_404(event_id)).first()
    if event is None or not may_see_clinic(caller.user, event.clinic_id, event.patient):
        raise Http404(_("Not found."))
    authorize(caller.user, perm, clinic_id=event.clinic_id, patient=event.patient)
    if audit:
        audit_record(
            actor=caller.actor(event.clinic_id),
            action=Action.ADVERSE_EVENT_READ,
            clinic_id=event.clinic_id,
            patient_id=event.patient_id,
            obj=event,
        )
    return event


def events_of(*, caller: Caller, patient: Patient, audit: bool = True) -> list[AdverseEvent]:
    """The patient's side effects, newest onset first, each with its primary session."""
    authorize(caller.user, Perm.ADVERSE_EVENT_VIEW, clinic_id=patient.clinic_id, patient=patient)
    events: list[AdverseEvent] = list(
        AdverseEvent.objects.filter(patient=patient)
        .select_related("area")
        .prefetch_related(
            Prefetch(
                "session_links",
                queryset=AdverseEventSession.objects.filter(primary=True).select_related(
                    "session__plan__protocol_version__protocol"
                ),
                to_attr="primary_links",
            )
        )
        .order_by("-onset_on", "-id")[:LIST_LIMIT]
    )
    if audit:
        audit_record(
            actor=caller.actor(patient.clinic_id),
            action=Action.ADVERSE_EVENT_READ,
            clinic_id=patient.clinic_id,
            patient_id=patient.pk,
            detail={"events": [event.pk for event in events]},
        )
    return events


@dataclass(frozen=True)
class FormulaLink:
    """A formula (the version prepared) the patient received in a linked session."""

    session_id: int
    formula_id: int
    version: int
    name: str


@dataclass(frozen=True)
class EventLinks:
    sessions: list[AdverseEventSession]
    lots: list[AdverseEventLot]
    follow_ups: list[FollowUp]
    formulas: list[FormulaLink] = field(default_factory=list)


def event_links(event: AdverseEvent) -> EventLinks:
    """What the event is linked to (read with the event, whose read is audited): its sessions, and through
    them the lots, formulas, practitioner, room and device."""
    sessions = list(
        event.session_links.select_related(
            "session__plan__protocol_version__protocol", "practitioner", "room", "device"
        ).order_by("-primary", "-session_date")
    )
    formulas = [
        FormulaLink(*row)
        for row in SessionPreparation.objects.filter(session_id__in=[link.session_id for link in sessions])
        .values_list(
            "session_id",
            "preparation__formula_version__formula_id",
            "preparation__formula_version__number",
            "preparation__formula_version__formula__name",
        )
        .order_by("-session__session_date", "preparation__formula_version__formula__name")
        .distinct()
    ]
    return EventLinks(
        sessions=sessions,
        formulas=formulas,
        lots=list(event.lot_links.select_related("lot__product").order_by("-exposed_on", "lot_id")),
        follow_ups=list(event.follow_ups.select_related("assigned_to", "closed_by").order_by("due_on")),
    )


# --- recording events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventIn:
    kind: str
    onset_on: date
    severity: str = "mild"
    area: str = ""  # a treatments.BodyArea code, or "" when not at an area
    other_kind: str = ""
    serious_criteria: Sequence[str] = ()
    resolved_on: date | None = None
    outcome: str = ""  # "": from the resolution date
    actions: Sequence[str] = ()
    actions_note: str = ""
    description: str = ""
    clinical_note: str = ""
    session_id: int | None = None  # the session it followed, when the reporter knows


@dataclass(frozen=True)
class PhotoIn:
    content: bytes
    name: str = ""


@dataclass(frozen=True)
class _SessionRow:
    id: int
    session_date: date
    practitioner_id: int
    room_id: int | None
    device_id: int | None


@dataclass
class _Checked:
    data: EventIn
    area: BodyArea | None
    outcome: str
    serious: bool
    sessions: list[_SessionRow]
    named: int | None
    texts: dict[str, str] = field(default_factory=dict)


def _area(code: str) -> BodyArea | None:
    if not code:
        return None
    area = BodyArea.objects.filter(code=code, is_active=True).first()
    if area is None:
        raise _refuse("area", _("Choose an area of the body map."))
    return area


def _check(patient: Patient, data: EventIn, today: date, *, staff: bool) -> _Checked:
    """Everything that can be wrong with an event, before anything is written."""
    errors: dict[str, list[str]] = {}
    texts: dict[str, str] = {}
    for name, limit in (("other_kind", 100), ("actions_note", 500), ("description", MAX_TEXT)):
        try:
            texts[name] = _text(getattr(data, name), name, limit)
        except ValidationError as error:
            errors.update(error.message_dict)
    try:
        texts["clinical_note"] = _text(data.clinical_note, "clinical_note")
    except ValidationError as error:
        errors.update(error.message_dict)
    if not staff and texts.get("clinical_note"):
        errors["clinical_note"] = [_("Only the clinic writes clinical notes.")]
    area: BodyArea | None = None
    try:
        area = _area(data.area)
    except ValidationError as error:
        errors.update(error.message_dict)
    named_on: date | None = None
    if data.session_id is not None:
        named = (
            TreatmentSession.objects.filter(pk=id_or_404(data.session_id), patient=patient)
            .values_list("session_date", flat=True)
            .first()
        )
        if named is None:
            errors["session_id"] = [_("Choose a session of this patient.")]
        named_on = named
    first_on = (
        TreatmentSession.objects.filter(patient=patient)
        .order_by("session_date")
        .values_list("session_date", flat=True)
        .first()
    )
    facts = rules.EventFacts(
        kind=data.kind,
        severity=data.severity,
        onset_on=data.onset_on,
        today=today,
        resolved_on=data.resolved_on,
        outcome=data.outcome,
        serious_criteria=tuple(data.serious_criteria),
        other_kind=texts.get("other_kind", ""),
        actions=tuple(data.actions),
        first_session_on=first_on,
        session_on=named_on,
    )
    for name, message in rules.event_problems(facts).items():
        errors.setdefault(name, []).append(message)
    if errors:
        raise ValidationError(errors)
    window_start = data.onset_on - timedelta(days=rules.INFECTION_LINK_DAYS)
    rows = [
        _SessionRow(*row)
        for row in TreatmentSession.objects.filter(
            patient=patient, session_date__lte=data.onset_on, session_date__gte=window_start
        )
        .order_by("-session_date", "-id")
        .values_list("id", "session_date", "practitioner_id", "room_id", "device_id")[:200]
    ]
    if data.session_id is not None and all(row.id != data.session_id for row in rows):
        rows += [
            _SessionRow(*row)
            for row in TreatmentSession.objects.filter(pk=data.session_id).values_list(
                "id", "session_date", "practitioner_id", "room_id", "device_id"
            )
        ]
    criteria = list(dict.fromkeys(data.serious_criteria))
    if data.severity == "life-threatening" and "life-threatening" not in criteria:
        criteria.append("life-threatening")
    return _Checked(
        data=EventIn(**{**data.__dict__, "serious_criteria": tuple(criteria)}),
        area=area,
        outcome=rules.outcome_for(facts),
        serious=rules.is_serious(data.severity, criteria),
        sessions=rows,
        named=data.session_id,
        texts=texts,
    )


def _clean(photo: PhotoIn) -> images.CleanImage:
    """The photo validated and re-encoded (lib.images). The client's file name is never used; one that is a
    path, a traversal or carries control characters is refused all the same (targets.md #6)."""
    if (
        len(photo.name) > 255
        or any(part in photo.name for part in ("/", "\\", "..", "\x00"))
        or any(ord(char) < 32 for char in photo.name)
    ):
        raise _refuse("photo", _("The file name is not acceptable: send the photo as a plain file."))
    try:
        return images.clean_image(photo.content, name=photo.name, max_bytes=MAX_PHOTO_BYTES)
    except images.ImageRejected as rejected:
        raise _refuse("photo", str(rejected.message)) from None


def _clean_photo(photo: PhotoIn | None) -> images.CleanImage | None:
    return None if photo is None else _clean(photo)


def _store_photo(event: AdverseEvent, clean: images.CleanImage, now: datetime) -> str:
    name = images.store_image(clean, folder=PHOTO_PREFIX)
    event.photo_name = name
    event.photo_content_type = clean.content_type
    event.photo_added_at = now
    event.save(update_fields=["photo_name", "photo_content_type", "photo_added_at"])
    return name


def _write_links(event: AdverseEvent, sessions: Sequence[_SessionRow], named: int | None) -> list[rules.Link]:
    """(Re)write the event's session and lot links from the sessions before its onset."""
    event.session_links.all().delete()
    event.lot_links.all().delete()
    by_id = {row.id: row for row in sessions}
    links = rules.link_sessions(
        event.kind,
        event.onset_on,
        [rules.SessionFacts(row.id, row.session_date) for row in sessions],
        named=named,
    )
    AdverseEventSession.objects.bulk_create(
        [
            AdverseEventSession(
                event=event,
                session_id=link.session_id,
                primary=link.primary,
                days_after=link.days_after,
                clinic_id=event.clinic_id,
                kind=event.kind,
                onset_on=event.onset_on,
                session_date=link.on,
                practitioner_id=by_id[link.session_id].practitioner_id,
                room_id=by_id[link.session_id].room_id,
                device_id=by_id[link.session_id].device_id,
            )
            for link in links
        ]
    )
    linked = [link.session_id for link in links]
    lots: dict[tuple[int, int | None], tuple[str, date]] = {}
    for session_id, lot_id in (
        PreparationLine.objects.filter(preparation__session_use__session_id__in=linked)
        .values_list("preparation__session_use__session_id", "lot_id")
        .distinct()
    ):
        lots[(lot_id, session_id)] = (AdverseEventLot.Via.PREPARATION, by_id[session_id].session_date)
    # Straight from the vial: within the link window for an infection, else on the primary session's day.
    zone = event.clinic.zone
    if event.kind == rules.INFECTION:
        first_day = event.onset_on - timedelta(days=rules.INFECTION_LINK_DAYS)
        last_day = event.onset_on
    elif links:
        first_day = last_day = links[0].on
    else:
        first_day, last_day = event.onset_on, event.onset_on - timedelta(days=1)  # none
    if first_day <= last_day:
        start = datetime.combine(first_day, datetime.min.time(), tzinfo=zone)
        end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        for lot_id, at in StockMovement.objects.filter(
            patient_id=event.patient_id, kind=StockMovement.Kind.ADMINISTERED, at__gte=start, at__lt=end
        ).values_list("lot_id", "at"):
            lots.setdefault((lot_id, None), (AdverseEventLot.Via.ADMINISTERED, timezone.localdate(at, zone)))
    AdverseEventLot.objects.bulk_create(
        [
            AdverseEventLot(
                event=event,
                lot_id=lot_id,
                session_id=session_id,
                via=via,
                exposed_on=on,
                clinic_id=event.clinic_id,
                kind=event.kind,
                onset_on=event.onset_on,
            )
            for (lot_id, session_id), (via, on) in sorted(
                lots.items(), key=lambda item: (item[0][0], item[1][1])
            )
        ]
    )
    return links


def _sync_follow_ups(event: AdverseEvent, now: datetime) -> None:
    """Open, move or close the event's follow-ups to match it (rules.follow_ups)."""
    existing = {f.kind: f for f in FollowUp.objects.select_for_update().filter(event=event)}
    # The practitioner of the session it followed.
    assignee = event.session_links.filter(primary=True).values_list("practitioner_id", flat=True).first()
    wanted = (
        {}
        if event.retracted_at is not None
        else {
            plan.kind: plan
            for plan in rules.follow_ups(
                event.kind, event.onset_on, serious=event.serious, severity=event.severity
            )
        }
    )
    for kind, follow_up in existing.items():
        if follow_up.status != FollowUp.Status.OPEN:
            continue
        if event.retracted_at is not None:
            _close(follow_up, FollowUp.Status.DONE, now, _("Entered in error."))
        elif kind not in wanted:
            _close(follow_up, FollowUp.Status.DONE, now, _("No longer an infection."))
        elif kind == "course" and event.resolved_on is not None:
            _close(follow_up, FollowUp.Status.RESOLVED, now, "")
        else:
            follow_up.due_on = wanted[kind].due_on
            follow_up.assigned_to_id = assignee
            follow_up.save(update_fields=["due_on", "assigned_to"])
    for kind, plan in wanted.items():
        if kind in existing or (kind == "course" and event.resolved_on is not None):
            continue
        FollowUp.objects.create(
            clinic_id=event.clinic_id,
            patient_id=event.patient_id,
            event=event,
            kind=kind,
            due_on=plan.due_on,
            assigned_to_id=assignee,
            created_at=now,
        )


def _close(follow_up: FollowUp, status: str, now: datetime, note: str, by: User | None = None) -> None:
    follow_up.status = status
    follow_up.closed_at = now
    follow_up.closed_by = by
    follow_up.note = note
    follow_up.save(update_fields=["status", "closed_at", "closed_by", "note"])


def _link_summary(event: AdverseEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "sessions": list(
            event.session_links.order_by("-primary", "-session_date").values_list("session_id", flat=True)
        ),
        "lots": sorted(set(event.lot_links.values_list("lot_id", flat=True))),
    }


def event_record(
    *,
    caller: Caller,
    patient: Patient,
    data: EventIn,
    photo: PhotoIn | None = None,
    now: datetime | None = None,
) -> AdverseEvent:
    """Record a side effect: staff (``adverse_event.record``) or the patient themself in the portal
    (``adverse_event.report``; nobody reports for another patient). Refused with the field at fault and
    nothing written when a date is impossible (R-AE: resolution before onset, onset before the session)."""
    own = _is_own(caller, patient)
    staff = not own
    authorize(
        caller.user,
        Perm.ADVERSE_EVENT_REPORT if own else Perm.ADVERSE_EVENT_RECORD,
        clinic_id=patient.clinic_id,
        patient=patient,
    )
    clinic = patient.clinic
    now = now or timezone.now()
    today = timezone.localdate(now, timezone=clinic.zone)
    checked = _check(patient, data, today, staff=staff)
    clean = _clean_photo(photo)
    stored: str | None = None
    try:
        with transaction.atomic():
            event = AdverseEvent.objects.create(
                clinic=clinic,
                patient=patient,
                kind=data.kind,
                other_kind=checked.texts["other_kind"] if data.kind == rules.OTHER else "",
                area=checked.area,
                severity=data.severity,
                serious=checked.serious,
                serious_criteria=list(checked.data.serious_criteria),
                onset_on=data.onset_on,
                resolved_on=data.resolved_on,
                expected_end_on=rules.expected_end(data.kind, data.onset_on),
                outcome=checked.outcome,
                actions=list(dict.fromkeys(data.actions)),
                actions_note=checked.texts["actions_note"],
                description=checked.texts["description"],
                clinical_note=checked.texts["clinical_note"] if staff else "",
                reported_via=AdverseEvent.Reporter.STAFF if staff else AdverseEvent.Reporter.PATIENT,
                reported_at=now,
                reported_by=_user(caller),
                reviewed_at=now if staff else None,
                reviewed_by=_user(caller) if staff else None,
            )
            _write_links(event, checked.sessions, checked.named)
            _sync_follow_ups(event, now)
            if clean is not None:
                stored = _store_photo(event, clean, now)
            audit_record(
                actor=caller.actor(clinic.pk),
                action=Action.ADVERSE_EVENT_RECORD if staff else Action.ADVERSE_EVENT_REPORT,
                clinic_id=clinic.pk,
                patient_id=patient.pk,
                obj=event,
                detail={**_link_summary(event), "photo": stored is not None},
            )
            if event.kind == rules.INFECTION:
                scan_clinic(clinic=clinic, actor=caller.actor(clinic.pk), now=now)
    except BaseException:
        if stored is not None:
            default_storage.delete(stored)
        raise
    return event


def event_update(
    *, caller: Caller, event: AdverseEvent, data: EventIn, now: datetime | None = None
) -> AdverseEvent:
    """Staff correct or complete an event (its resolution, outcome, actions…); the links and follow-ups
    follow. Reviewing a patient's report is part of it."""
    authorize(caller.user, Perm.ADVERSE_EVENT_RECORD, clinic_id=event.clinic_id, patient=event.patient)
    if event.retracted_at is not None:
        raise _refuse("event", _("This side effect was entered in error and is closed."))
    now = now or timezone.now()
    clinic = event.clinic
    checked = _check(event.patient, data, timezone.localdate(now, timezone=clinic.zone), staff=True)
    with transaction.atomic():
        locked = _event_queryset().select_for_update(of=("self",)).get(pk=event.pk)
        was_infection = locked.kind == rules.INFECTION
        relink = locked.kind != data.kind or locked.onset_on != data.onset_on or (data.session_id is not None)
        values: dict[str, Any] = {
            "kind": data.kind,
            "other_kind": checked.texts["other_kind"] if data.kind == rules.OTHER else "",
            "area": checked.area,
            "severity": data.severity,
            "serious": checked.serious,
            "serious_criteria": list(checked.data.serious_criteria),
            "onset_on": data.onset_on,
            "resolved_on": data.resolved_on,
            "expected_end_on": rules.expected_end(data.kind, data.onset_on),
            "outcome": checked.outcome,
            "actions": list(dict.fromkeys(data.actions)),
            "actions_note": checked.texts["actions_note"],
            "description": checked.texts["description"],
            "clinical_note": checked.texts["clinical_note"],
        }
        changed = sorted(name for name, value in values.items() if getattr(locked, name) != value)
        for name, value in values.items():
            setattr(locked, name, value)
        locked.updated_at = now
        locked.updated_by = _user(caller)
        if locked.reviewed_at is None:
            locked.reviewed_at = now
            locked.reviewed_by = _user(caller)
            changed.append("reviewed")
        locked.save()
        if relink:
            _write_links(locked, checked.sessions, checked.named)
        _sync_follow_ups(locked, now)
        audit_record(
            actor=caller.actor(clinic.pk),
            action=Action.ADVERSE_EVENT_UPDATE,
            clinic_id=clinic.pk,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"fields": changed, **(_link_summary(locked) if relink else {})},
        )
        if was_infection or locked.kind == rules.INFECTION:
            scan_clinic(clinic=clinic, actor=caller.actor(clinic.pk), now=now)
    return locked


def event_in(event: AdverseEvent, **changes: Any) -> EventIn:
    """The event as input, with ``changes`` (what a form starts from)."""
    values: dict[str, Any] = {
        "kind": event.kind,
        "onset_on": event.onset_on,
        "severity": event.severity,
        "area": event.area.code if event.area_id is not None and event.area else "",
        "other_kind": event.other_kind,
        "serious_criteria": tuple(event.serious_criteria),
        "resolved_on": event.resolved_on,
        "outcome": event.outcome,
        "actions": tuple(event.actions),
        "actions_note": event.actions_note,
        "description": event.description,
        "clinical_note": event.clinical_note,
    }
    if (
        "resolved_on" in changes
        and "outcome" not in changes
        and values["outcome"] in ("not-recovered", "recovered")
    ):
        values["outcome"] = ""  # from the dates again
    values.update(changes)
    return EventIn(**values)


def event_review(*, caller: Caller, event: AdverseEvent, now: datetime | None = None) -> AdverseEvent:
    """A clinician has read the patient's report (it leaves the dashboard's review list)."""
    authorize(caller.user, Perm.ADVERSE_EVENT_RECORD, clinic_id=event.clinic_id, patient=event.patient)
    now = now or timezone.now()
    with transaction.atomic():
        locked = AdverseEvent.objects.select_for_update().get(pk=event.pk)
        if locked.reviewed_at is None:
            locked.reviewed_at = now
            locked.reviewed_by = _user(caller)
            locked.save(update_fields=["reviewed_at", "reviewed_by"])
            audit_record(
                actor=caller.actor(locked.clinic_id),
                action=Action.ADVERSE_EVENT_UPDATE,
                clinic_id=locked.clinic_id,
                patient_id=locked.patient_id,
                obj=locked,
                detail={"fields": ["reviewed"]},
            )
    return locked


def event_retract(
    *, caller: Caller, event: AdverseEvent, reason: str, now: datetime | None = None
) -> AdverseEvent:
    """Entered in error: kept, with who, when and why, but no longer linked, followed or counted."""
    authorize(caller.user, Perm.ADVERSE_EVENT_RECORD, clinic_id=event.clinic_id, patient=event.patient)
    reason = _text(reason, "reason", 1000)
    if not reason:
        raise _refuse("reason", _("Say why it was entered in error."))
    now = now or timezone.now()
    with transaction.atomic():
        locked = _event_queryset().select_for_update(of=("self",)).get(pk=event.pk)
        if locked.retracted_at is not None:
            raise _refuse("event", _("Already marked as entered in error."))
        locked.retracted_at = now
        locked.retracted_by = _user(caller)
        locked.retract_reason = reason
        locked.save(update_fields=["retracted_at", "retracted_by", "retract_reason"])
        locked.session_links.all().delete()
        locked.lot_links.all().delete()
        _sync_follow_ups(locked, now)
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.ADVERSE_EVENT_RETRACT,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"reason": reason},
        )
        if locked.kind == rules.INFECTION:
            scan_clinic(clinic=locked.clinic, actor=caller.actor(locked.clinic_id), now=now)
    return locked


def event_photo_add(
    *, caller: Caller, event: AdverseEvent, photo: PhotoIn, now: datetime | None = None
) -> AdverseEvent:
    """Add the event's photo (the patient to their own report, or staff). Validated and re-encoded without
    any metadata (lib.images); one photo per event."""
    own = _is_own(caller, event.patient)
    authorize(
        caller.user,
        Perm.ADVERSE_EVENT_REPORT if own else Perm.ADVERSE_EVENT_RECORD,
        clinic_id=event.clinic_id,
        patient=event.patient,
    )
    if event.retracted_at is not None:
        raise _refuse("photo", _("This side effect was entered in error and is closed."))
    clean = _clean(photo)
    now = now or timezone.now()
    stored: str | None = None
    try:
        with transaction.atomic():
            locked = AdverseEvent.objects.select_for_update().get(pk=event.pk)
            if locked.photo_name:
                raise _refuse("photo", _("This side effect has a photo already."))
            stored = _store_photo(locked, clean, now)
            audit_record(
                actor=caller.actor(locked.clinic_id),
                action=Action.ADVERSE_EVENT_PHOTO_ADD,
                clinic_id=locked.clinic_id,
                patient_id=locked.patient_id,
                obj=locked,
                detail={"width": clean.width, "height": clean.height, "type": clean.content_type},
            )
    except BaseException:
        if stored is not None:
            default_storage.delete(stored)
        raise
    return locked


def event_photo(*, caller: Caller, event: AdverseEvent) -> tuple[bytes, str]:
    """The photo's bytes and type, for the clinicians and the patient (never the front desk). Audited."""
    authorize(caller.user, Perm.ADVERSE_EVENT_PHOTO_VIEW, clinic_id=event.clinic_id, patient=event.patient)
    if not event.photo_name:
        raise Http404(_("Not found."))
    with default_storage.open(event.photo_name, "rb") as stored:
        content = stored.read()
    audit_record(
        actor=caller.actor(event.clinic_id),
        action=Action.ADVERSE_EVENT_PHOTO_READ,
        clinic_id=event.clinic_id,
        patient_id=event.patient_id,
        obj=event,
    )
    return content, event.photo_content_type or "image/jpeg"


def patient_sessions(patient: Patient, limit: int = 30) -> list[TreatmentSession]:
    """The patient's latest sessions, for "which session did it follow?"."""
    return list(
        TreatmentSession.objects.filter(patient=patient)
        .select_related("plan__protocol_version__protocol")
        .order_by("-session_date", "-id")[:limit]
    )


# --- the check-in gate: R-PRE-BRUISE ----------------------------------------------------------------------


def bruising_gate(plan: TreatmentPlan, on: date) -> list[Finding]:
    """The gate's ``bruising-unresolved`` hook (registered in SafetyConfig.ready): bruising linked to the
    previous session of the plan or of the patient, still open on ``on``, blocks. One query."""
    before = TreatmentSession.objects.filter(session_date__lte=on).order_by("-session_date", "-id")
    previous_of_plan = before.filter(plan_id=plan.pk).values("id")[:1]
    previous_of_patient = before.filter(patient_id=plan.patient_id).values("id")[:1]
    rows = (
        AdverseEventSession.objects.filter(
            Q(session_id=models.Subquery(previous_of_plan))
            | Q(session_id=models.Subquery(previous_of_patient)),
            kind=rules.BRUISING,
            event__patient_id=plan.patient_id,
            event__retracted_at__isnull=True,
        )
        .values_list(
            "event_id", "event__onset_on", "event__resolved_on", "event__area__label", "session_date"
        )
        .distinct()
    )
    return rules.bruising_findings(
        [
            rules.BruiseFacts(event_id, onset, resolved, _(label) if label else "", session_on)
            for event_id, onset, resolved, label, session_on in rows
        ],
        on,
    )


# --- follow-ups and the dashboard -------------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    today: date
    due: list[FollowUp]  # open past the expected course (or to review at once), oldest first
    watches: list[FollowUp]  # open 12-week infection watches
    to_review: list[AdverseEvent]  # patients' reports no clinician has read
    signals: list[SafetySignal]  # found by the last scan
    mine: frozenset[int]  # follow-ups assigned to the caller

    @property
    def patient_ids(self) -> list[int]:
        ids = [f.patient_id for f in self.due] + [f.patient_id for f in self.watches]
        return sorted(set(ids + [e.patient_id for e in self.to_review]))


def _follow_up_queryset() -> models.QuerySet[FollowUp]:
    return FollowUp.objects.select_related("patient", "event__area", "assigned_to")


def dashboard(*, caller: Caller, clinic: Clinic, today: date | None = None) -> Dashboard:
    """The practitioner's safety page: what is due, the infection watches, the patients' reports to read
    and the active signals. A bounded number of queries whatever the clinic's size; audited with the
    patients shown."""
    authorize(caller.user, Perm.FOLLOW_UP_MANAGE, clinic_id=clinic.pk)
    today = today or clinic.today()
    open_ups = _follow_up_queryset().filter(clinic=clinic, status=FollowUp.Status.OPEN)
    due = list(
        open_ups.filter(kind=FollowUp.Kind.COURSE, due_on__lte=today).order_by("due_on", "id")[:LIST_LIMIT]
    )
    watches = list(open_ups.filter(kind=FollowUp.Kind.INFECTION_WATCH).order_by("due_on", "id")[:LIST_LIMIT])
    to_review = list(
        AdverseEvent.objects.filter(clinic=clinic, reviewed_at__isnull=True, retracted_at__isnull=True)
        .select_related("patient", "area")
        .order_by("reported_at", "id")[:LIST_LIMIT]
    )
    signals = list(
        SafetySignal.objects.filter(clinic=clinic, active=True).order_by("level", "adjusted_p", "id")[:50]
    )
    user_id = caller.user.pk
    result = Dashboard(
        today=today,
        due=due,
        watches=watches,
        to_review=to_review,
        signals=signals,
        mine=frozenset(f.pk for f in [*due, *watches] if f.assigned_to_id == user_id),
    )
    audit_record(
        actor=caller.actor(clinic.pk),
        action=Action.FOLLOW_UP_READ,
        clinic_id=clinic.pk,
        detail={"patients": result.patient_ids},
    )
    return result


def follow_up_get(*, caller: Caller, follow_up_id: int) -> FollowUp:
    follow_up = (
        _follow_up_queryset().select_related("patient__clinic").filter(pk=id_or_404(follow_up_id)).first()
    )
    if follow_up is None or not may_see_clinic(caller.user, follow_up.clinic_id):
        raise Http404(_("Not found."))
    authorize(caller.user, Perm.FOLLOW_UP_MANAGE, clinic_id=follow_up.clinic_id, patient=follow_up.patient)
    return follow_up


def follow_up_close(
    *, caller: Caller, follow_up: FollowUp, note: str, now: datetime | None = None
) -> FollowUp:
    """Done, with what was found ("seen on day 14: resolved", "no recurrence at 12 weeks")."""
    authorize(caller.user, Perm.FOLLOW_UP_MANAGE, clinic_id=follow_up.clinic_id, patient=follow_up.patient)
    note = _text(note, "note", 2000)
    if not note:
        raise _refuse("note", _("Say what the follow-up found."))
    now = now or timezone.now()
    with transaction.atomic():
        locked = FollowUp.objects.select_for_update().get(pk=follow_up.pk)
        if locked.status != FollowUp.Status.OPEN:
            raise _refuse("follow_up", _("This follow-up is closed already."))
        _close(locked, FollowUp.Status.DONE, now, note, _user(caller))
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.FOLLOW_UP_CLOSE,
            clinic_id=locked.clinic_id,
            patient_id=locked.patient_id,
            obj=locked,
            detail={"event": locked.event_id, "kind": locked.kind},
        )
    return locked


def follow_ups_of(
    *, caller: Caller, clinic: Clinic, status: str = "open", mine: bool = False, limit: int = LIST_LIMIT
) -> list[FollowUp]:
    authorize(caller.user, Perm.FOLLOW_UP_MANAGE, clinic_id=clinic.pk)
    found = _follow_up_queryset().filter(clinic=clinic)
    if status:
        found = found.filter(status=status)
    if mine:
        found = found.filter(assigned_to_id=caller.user.pk)
    rows = list(found.order_by("due_on", "id")[: max(1, min(limit, LIST_LIMIT))])
    audit_record(
        actor=caller.actor(clinic.pk),
        action=Action.FOLLOW_UP_READ,
        clinic_id=clinic.pk,
        detail={"patients": sorted({f.patient_id for f in rows})},
    )
    return rows


# --- signals ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanOutcome:
    clinic: Clinic
    result: rules.ScanResult
    signals: list[SafetySignal]
    seconds: float
    queries: int | None = None


def _exposures(clinic: Clinic, start: date, end: date) -> list[rules.Exposure]:
    """Every session and direct administration of the clinic between two days, with its sources."""
    # The order of the rows does not matter (rules.scan counts sets), so no ORDER BY: the models' default
    # ordering would join the plans and sort every session of the period. The sources are interned, one tuple
    # per lot, practitioner, room, device and day, as thousands of sessions share a few of them.
    interned: dict[tuple[str, object], rules.Source] = {}

    def source(kind: rules.SourceKind, key: object) -> rules.Source:
        found = interned.get((kind, key))
        if found is None:
            found = interned[(kind, key)] = (kind, key.isoformat() if isinstance(key, date) else str(key))
        return found

    lots: dict[int, set[rules.Source]] = defaultdict(set)
    for session_id, lot_id in (
        PreparationLine.objects.filter(
            preparation__session_use__session__clinic=clinic,
            preparation__session_use__session__session_date__gte=start,
            preparation__session_use__session__session_date__lte=end,
        )
        .order_by()
        .values_list("preparation__session_use__session_id", "lot_id")
    ):
        lots[session_id].add(source("lot", lot_id))
    exposures: list[rules.Exposure] = []
    for session_id, patient_id, on, practitioner_id, room_id, device_id in (
        TreatmentSession.objects.filter(clinic=clinic, session_date__gte=start, session_date__lte=end)
        .order_by()
        .values_list("id", "patient_id", "session_date", "practitioner_id", "room_id", "device_id")
    ):
        sources: set[rules.Source] = {source("practitioner", practitioner_id), source("day", on)}
        if room_id is not None:
            sources.add(source("room", room_id))
        if device_id is not None:
            sources.add(source("device", device_id))
        sources.update(lots.get(session_id, ()))
        exposures.append(rules.Exposure(patient_id, on, frozenset(sources), session_id))
    zone = clinic.zone
    first = datetime.combine(start, datetime.min.time(), tzinfo=zone)
    after = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    for patient_id, lot_id, at in (
        StockMovement.objects.filter(
            clinic=clinic, kind=StockMovement.Kind.ADMINISTERED, at__gte=first, at__lt=after
        )
        .order_by()
        .values_list("patient_id", "lot_id", "at")
    ):
        on = timezone.localdate(at, zone)
        exposures.append(
            rules.Exposure(patient_id, on, frozenset({source("lot", lot_id), source("day", on)}))
        )
    return exposures


def _infections(clinic: Clinic, start: date, end: date) -> list[rules.Infection]:
    sources: dict[int, set[rules.Source]] = defaultdict(set)
    sessions: dict[int, set[int]] = defaultdict(set)
    for event_id, session_id, on, practitioner_id, room_id, device_id in AdverseEventSession.objects.filter(
        clinic=clinic, kind=rules.INFECTION, onset_on__gte=start, onset_on__lte=end
    ).values_list("event_id", "session_id", "session_date", "practitioner_id", "room_id", "device_id"):
        found = sources[event_id]
        found.update({("practitioner", str(practitioner_id)), ("day", on.isoformat())})
        if room_id is not None:
            found.add(("room", str(room_id)))
        if device_id is not None:
            found.add(("device", str(device_id)))
        sessions[event_id].add(session_id)
    for event_id, lot_id, via, on in AdverseEventLot.objects.filter(
        clinic=clinic, kind=rules.INFECTION, onset_on__gte=start, onset_on__lte=end
    ).values_list("event_id", "lot_id", "via", "exposed_on"):
        sources[event_id].add(("lot", str(lot_id)))
        if via == AdverseEventLot.Via.ADMINISTERED:
            sources[event_id].add(("day", on.isoformat()))
    return [
        rules.Infection(
            event_id, patient_id, onset, frozenset(sources[event_id]), frozenset(sessions[event_id])
        )
        for event_id, patient_id, onset in AdverseEvent.objects.filter(
            clinic=clinic,
            kind=rules.INFECTION,
            retracted_at__isnull=True,
            onset_on__gte=start,
            onset_on__lte=end,
        ).values_list("id", "patient_id", "onset_on")
    ]


def source_labels(clinic: Clinic, sources: Iterable[rules.Source]) -> dict[rules.Source, str]:
    """How each source is named on the page: the practitioner's name, the room, the device with its
    identifier, the lot with its product, the day as a date."""
    wanted: dict[str, set[int]] = defaultdict(set)
    labels: dict[rules.Source, str] = {}
    for kind, key in sources:
        if kind == "day":
            labels[(kind, key)] = formats.date_format(date.fromisoformat(key), "DATE_FORMAT")
        else:
            wanted[kind].add(int(key))
    if wanted["practitioner"]:
        for user in User.objects.filter(pk__in=wanted["practitioner"]):
            labels[("practitioner", str(user.pk))] = user.get_full_name() or user.get_username()
    if wanted["room"]:
        for room in Room.objects.filter(pk__in=wanted["room"], clinic=clinic):
            labels[("room", str(room.pk))] = room.name
    if wanted["device"]:
        for device in Device.objects.filter(pk__in=wanted["device"], clinic=clinic):
            labels[("device", str(device.pk))] = f"{device.name} ({device.identifier})"
    if wanted["lot"]:
        for lot in Lot.objects.filter(pk__in=wanted["lot"], clinic=clinic).select_related("product"):
            labels[("lot", str(lot.pk))] = f"{lot.product.name} — {lot.number}"
    return labels


def scan_clinic(
    *, clinic: Clinic, actor: Actor, now: datetime | None = None, today: date | None = None
) -> ScanOutcome:
    """Scan one clinic's infections for signals (rules.scan) and store what was found: a source found again
    is updated (reopened for review when it has new cases), one no longer found becomes inactive. Callers
    authorise; this is called by the services that record infections and by ``signals_scan``."""
    started = time.perf_counter()
    now = now or timezone.now()
    today = today or timezone.localdate(now, timezone=clinic.zone)
    thresholds = settings_of(clinic).signal_settings()
    period_start = today - timedelta(days=2 * thresholds.window_days)
    window_start = today - timedelta(days=thresholds.window_days)
    result = rules.scan(
        exposures=_exposures(clinic, period_start, today),
        infections=_infections(clinic, window_start, today),
        today=today,
        settings=thresholds,
    )
    labels = source_labels(clinic, [signal.source for signal in result.signals])
    with transaction.atomic():
        existing = {
            (row.source_kind, row.source_key): row
            for row in SafetySignal.objects.select_for_update().filter(clinic=clinic)
        }
        found: list[SafetySignal] = []
        seen: set[tuple[str, str]] = set()
        for signal in result.signals:
            key = signal.source
            seen.add(key)
            row = existing.get(key)
            evidence = {
                "events": list(signal.events),
                "patients": list(signal.patients),
                "sessions": list(signal.sessions),
                "within": [list(source) for source in signal.within],
                "conditional_p": signal.conditional_p,
            }
            values: dict[str, Any] = {
                "source_label": labels.get(key, key[1])[:300],
                "lot_id": int(key[1]) if key[0] == "lot" else None,
                "level": signal.level,
                "active": True,
                "last_scanned_at": now,
                "window_start": result.window_start,
                "window_end": today,
                "period_start": result.period_start,
                "cases": signal.cases,
                "exposed": signal.exposed,
                "exposed_sessions": signal.exposed_sessions,
                "rate": signal.rate,
                "baseline_cases": signal.baseline_cases,
                "baseline_patients": signal.baseline_patients,
                "baseline_rate": signal.baseline_rate,
                "p_value": signal.p_value,
                "adjusted_p": signal.adjusted_p,
                "evidence": evidence,
            }
            if row is None:
                row = SafetySignal.objects.create(
                    clinic=clinic, source_kind=key[0], source_key=key[1], first_raised_at=now, **values
                )
            else:
                new_cases = (
                    set(signal.patients) - set(row.evidence.get("patients", [])) if row.active else True
                )
                for name, value in values.items():
                    setattr(row, name, value)
                if new_cases and row.status == SafetySignal.Status.REVIEWED:
                    row.status = SafetySignal.Status.OPEN  # new cases since the review: look again
                row.save()
            found.append(row)
        gone = [row.pk for key, row in existing.items() if key not in seen and row.active]
        if gone:
            SafetySignal.objects.filter(pk__in=gone).update(active=False, last_scanned_at=now)
        audit_record(
            actor=actor,
            action=Action.SAFETY_SCAN,
            clinic_id=clinic.pk,
            detail={
                "today": today.isoformat(),
                "infections": result.infections,
                "treated": result.treated_patients,
                "signals": [[s.source[0], s.source[1], s.level] for s in result.signals],
                "ended": len(gone),
            },
        )
    return ScanOutcome(clinic, result, found, time.perf_counter() - started)


def signals_scan(*, caller: Caller, clinic: Clinic, now: datetime | None = None) -> ScanOutcome:
    """Scan now (the medical director's button; ``manage.py safety_scan`` does every clinic daily)."""
    authorize(caller.user, Perm.SIGNAL_REVIEW, clinic_id=clinic.pk)
    return scan_clinic(clinic=clinic, actor=caller.actor(clinic.pk), now=now)


def scan_all(*, now: datetime | None = None, clinic_ids: Sequence[int] = ()) -> list[ScanOutcome]:
    """Every clinic (or those named), as the system: the daily scan."""
    clinics = Clinic.objects.order_by("pk")
    if clinic_ids:
        clinics = clinics.filter(pk__in=clinic_ids)
    return [scan_clinic(clinic=clinic, actor=SYSTEM_ACTOR, now=now) for clinic in clinics]


def signals_of(*, caller: Caller, clinic: Clinic, active_only: bool = False) -> list[SafetySignal]:
    authorize(caller.user, Perm.SIGNAL_VIEW, clinic_id=clinic.pk)
    found = SafetySignal.objects.filter(clinic=clinic)
    if active_only:
        found = found.filter(active=True)
    return list(found.order_by("-active", "level", "adjusted_p", "id")[:200])


def signal_get(*, caller: Caller, signal_id: int, perm: Perm = Perm.SIGNAL_VIEW) -> SafetySignal:
    signal = (
        SafetySignal.objects.select_related("clinic", "lot", "reviewed_by")
        .filter(pk=id_or_404(signal_id))
        .first()
    )
    if signal is None or not may_see_clinic(caller.user, signal.clinic_id):
        raise Http404(_("Not found."))
    authorize(caller.user, perm, clinic_id=signal.clinic_id)
    return signal


@dataclass(frozen=True)
class SignalEvidence:
    signal: SafetySignal
    events: list[AdverseEvent]
    sessions: list[TreatmentSession]
    within: list[tuple[str, str, str]]  # (kind, key, label) of the alerts that contain all its cases
    can_recall: bool


def signal_evidence(*, caller: Caller, signal: SafetySignal) -> SignalEvidence:
    """The events, patients and exposed sessions behind a signal. Audited with the patients shown."""
    authorize(caller.user, Perm.SIGNAL_VIEW, clinic_id=signal.clinic_id)
    evidence = signal.evidence or {}
    event_ids = [int(i) for i in evidence.get("events", [])][:500]
    session_ids = [int(i) for i in evidence.get("sessions", [])][:1000]
    events = list(
        AdverseEvent.objects.filter(clinic_id=signal.clinic_id, pk__in=event_ids)
        .select_related("patient", "area")
        .order_by("onset_on", "id")
    )
    sessions = list(
        TreatmentSession.objects.filter(clinic_id=signal.clinic_id, pk__in=session_ids)
        .select_related("patient", "practitioner", "room", "device")
        .order_by("session_date", "id")
    )
    within_sources = [(str(kind), str(key)) for kind, key in evidence.get("within", [])]
    labels: dict[tuple[str, str], str] = {}
    if within_sources:
        for row in SafetySignal.objects.filter(
            clinic_id=signal.clinic_id,
            source_kind__in=[kind for kind, _key in within_sources],
            source_key__in=[key for _kind, key in within_sources],
        ):
            labels[(row.source_kind, row.source_key)] = row.source_label
    audit_record(
        actor=caller.actor(signal.clinic_id),
        action=Action.SAFETY_SIGNAL_READ,
        clinic_id=signal.clinic_id,
        obj=signal,
        detail={"patients": sorted({event.patient_id for event in events})},
    )
    return SignalEvidence(
        signal=signal,
        events=events,
        sessions=sessions,
        within=[(kind, key, labels.get((kind, key), key)) for kind, key in within_sources],
        can_recall=signal.lot_id is not None
        and can(caller.user, Perm.LOT_RECALL, clinic_id=signal.clinic_id)
        and signal.lot is not None
        and signal.lot.recalled_at is None,
    )


def signal_review(
    *, caller: Caller, signal: SafetySignal, note: str, now: datetime | None = None
) -> SafetySignal:
    """The medical director has looked at it and says what was done (lot recalled, device withdrawn…)."""
    authorize(caller.user, Perm.SIGNAL_REVIEW, clinic_id=signal.clinic_id)
    note = _text(note, "note", 2000)
    if not note:
        raise _refuse("note", _("Say what was found and done."))
    now = now or timezone.now()
    with transaction.atomic():
        locked = SafetySignal.objects.select_for_update().get(pk=signal.pk)
        locked.status = SafetySignal.Status.REVIEWED
        locked.reviewed_at = now
        locked.reviewed_by = _user(caller)
        locked.review_note = note
        locked.save(update_fields=["status", "reviewed_at", "reviewed_by", "review_note"])
        audit_record(
            actor=caller.actor(locked.clinic_id),
            action=Action.SAFETY_SIGNAL_REVIEW,
            clinic_id=locked.clinic_id,
            obj=locked,
            detail={"note": note[:200]},
        )
    return locked


# --- the safety report: rates per 100 sessions (R-EVID) ---------------------------------------------------


@dataclass(frozen=True)
class SafetyReport:
    clinic: Clinic
    start: date
    end: date
    kind: str  # "" : every side effect
    small_below: int
    total: rules.RateRow | None
    by_protocol: list[rules.RateRow]
    by_formula: list[rules.RateRow]
    by_practitioner: list[rules.RateRow]
    by_area: list[rules.RateRow]
    unlinked_events: int  # events with no session in their link window: not counted in any rate

    @property
    def sections(self) -> list[tuple[str, str, list[rules.RateRow]]]:
        return [
            ("protocol", _("By protocol"), self.by_protocol),
            ("formula", _("By formula"), self.by_formula),
            ("practitioner", _("By practitioner"), self.by_practitioner),
            ("area", _("By area"), self.by_area),
        ]


def report_period(clinic: Clinic, start: date | None, end: date | None) -> tuple[date, date]:
    end = end or clinic.today()
    start = start or end - timedelta(days=REPORT_DEFAULT_DAYS - 1)
    if start > end:
        raise _refuse("start", _("The start is after the end."))
    if (end - start).days > 366 * 20:
        raise _refuse("start", _("Choose at most twenty years."))
    return start, end


def _rows(values: Iterable[Mapping[str, Any]], key: str, label: Any, small_below: int) -> list[rules.RateRow]:
    rows = [
        rules.rate_row(
            str(value[key]),
            label(value),
            with_event=int(value["k"]),
            sessions=int(value["n"]),
            small_below=small_below,
        )
        for value in values
        if value["n"]
    ]
    return sorted(rows, key=lambda row: (row.label.casefold(), row.key))


def safety_report(
    *,
    caller: Caller,
    clinic: Clinic,
    start: date | None = None,
    end: date | None = None,
    kind: str = "",
    action: Action = Action.SAFETY_REPORT_READ,
) -> SafetyReport:
    """Sessions followed by an adverse event (of ``kind``, or any) per 100 sessions, by protocol, formula,
    practitioner and area, with Wilson intervals — aggregates only, no patient (researchers see this and
    nothing else). A fixed number of queries whatever the data size."""
    authorize(caller.user, Perm.SAFETY_REPORT_VIEW, clinic_id=clinic.pk)
    if kind and kind not in rules.KINDS:
        raise _refuse("kind", _("Choose a side effect from the list."))
    start, end = report_period(clinic, start, end)
    small_below = settings_of(clinic).small_sample_sessions
    link_filter = Q(primary=True) & (Q(kind=kind) if kind else Q())
    has_event = Exists(AdverseEventSession.objects.filter(link_filter, session_id=OuterRef("pk")))
    sessions = TreatmentSession.objects.filter(clinic=clinic, session_date__gte=start, session_date__lte=end)
    # One pass over the period's sessions, counted by protocol and practitioner together; the protocols', the
    # practitioners' and the period's counts are sums of these cells, since every session has exactly one of
    # each (plan, protocol version, protocol and practitioner are required foreign keys).
    cells = list(
        sessions.annotate(e=has_event)
        .values(
            key=models.F("plan__protocol_version__protocol_id"),
            name=models.F("plan__protocol_version__protocol__name"),
            by=models.F("practitioner_id"),
        )
        .annotate(n=Count("id"), k=Count("id", filter=Q(e=True)))
        .order_by()
    )
    protocols: dict[int, dict[str, Any]] = {}
    practitioners: dict[int, dict[str, Any]] = {}
    for cell in cells:
        for groups, key, extra in (
            (protocols, cell["key"], {"name": cell["name"]}),
            (practitioners, cell["by"], {}),
        ):
            group = groups.setdefault(key, {"key": key, "n": 0, "k": 0, **extra})
            group["n"] += cell["n"]
            group["k"] += cell["k"]
    by_protocol = list(protocols.values())
    total = {"n": sum(v["n"] for v in by_protocol), "k": sum(v["k"] for v in by_protocol)}
    for pk, first, last, username in User.objects.filter(pk__in=list(practitioners)).values_list(
        "pk", "first_name", "last_name", "username"
    ):
        practitioners[pk].update(first=first, last=last, username=username)
    by_practitioner = list(practitioners.values())
    used = SessionPreparation.objects.filter(
        session__clinic=clinic, session__session_date__gte=start, session__session_date__lte=end
    ).annotate(e=Exists(AdverseEventSession.objects.filter(link_filter, session_id=OuterRef("session_id"))))
    by_formula = (
        used.values(
            key=models.F("preparation__formula_version__formula_id"),
            name=models.F("preparation__formula_version__formula__name"),
        )
        .annotate(n=Count("session", distinct=True), k=Count("session", distinct=True, filter=Q(e=True)))
        .order_by()
    )
    # By area: the sessions that charted the area, and among them those followed by an event on that area.
    # The denominators are counted over the charted areas by area id (joining each of those rows to its area
    # for the name would double the cost), the numerators from the (few) links: an EXISTS per charted area,
    # several per session, would cost more than both together. Codes are unique, so an id is a code.
    area_counts = dict(
        ChartedArea.objects.filter(
            session__clinic=clinic, session__session_date__gte=start, session__session_date__lte=end
        )
        .values_list("area_id")
        .annotate(n=Count("session", distinct=True))
        .order_by()
    )
    area_hits = dict(
        AdverseEventSession.objects.filter(
            link_filter,
            Exists(
                ChartedArea.objects.filter(
                    session_id=OuterRef("session_id"), area_id=OuterRef("event__area_id")
                )
            ),
            session__clinic=clinic,
            session__session_date__gte=start,
            session__session_date__lte=end,
        )
        .values_list("event__area_id")
        .annotate(k=Count("session", distinct=True))
        .order_by()
    )
    by_area = [
        {"key": code, "name": label, "n": area_counts[pk], "k": area_hits.get(pk, 0)}
        for pk, code, label in BodyArea.objects.filter(pk__in=list(area_counts)).values_list(
            "pk", "code", "label"
        )
    ]
    unlinked = (
        AdverseEvent.objects.filter(
            clinic=clinic, retracted_at__isnull=True, onset_on__gte=start, onset_on__lte=end
        )
        .filter(Q(kind=kind) if kind else Q())
        .exclude(Exists(AdverseEventSession.objects.filter(event_id=OuterRef("pk"))))
        .count()
    )
    report = SafetyReport(
        clinic=clinic,
        start=start,
        end=end,
        kind=kind,
        small_below=small_below,
        total=rules.rate_row(
            "all", _("All sessions"), with_event=total["k"], sessions=total["n"], small_below=small_below
        )
        if total["n"]
        else None,
        by_protocol=_rows(by_protocol, "key", lambda v: str(v["name"]), small_below),
        by_formula=_rows(by_formula, "key", lambda v: str(v["name"]), small_below),
        by_practitioner=_rows(
            by_practitioner,
            "key",
            lambda v: f"{v['first']} {v['last']}".strip() or str(v["username"]),
            small_below,
        ),
        by_area=_rows(by_area, "key", lambda v: _(str(v["name"])), small_below),
        unlinked_events=unlinked,
    )
    audit_record(
        actor=caller.actor(clinic.pk),
        action=action,
        clinic_id=clinic.pk,
        detail={"start": start.isoformat(), "end": end.isoformat(), "kind": kind},
    )
    return report
