"""Side effects through the services on the real database (issue 8; R-AE, R-PRE-BRUISE): recording and
linking, bad input refused with nothing written, follow-ups and the dashboard, the check-in gate's bruising
answer, photos, and entered-in-error."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from PIL import Image

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role
from mesoclinic.audit.models import AuditEvent
from mesoclinic.lib.findings import FindingsRefused
from mesoclinic.safety import services
from mesoclinic.safety.models import AdverseEvent, AdverseEventLot, AdverseEventSession, FollowUp
from mesoclinic.treatments.models import TreatmentSession
from tests.factories import ClinicFactory, PatientFactory, staff
from tests.safety_support import event, portal_user, ready, signed_session
from tests.treatments_support import Treat

pytestmark = pytest.mark.django_db


@pytest.fixture
def t(db: None) -> Treat:
    return ready()


def _counts() -> tuple[int, int, int, int]:
    return (
        AdverseEvent.objects.count(),
        AdverseEventSession.objects.count(),
        AdverseEventLot.objects.count(),
        FollowUp.objects.count(),
    )


def jpeg_with_gps() -> bytes:
    """A real photo-like JPEG carrying EXIF with a GPS block and a camera serial."""
    picture = Image.new("RGB", (64, 48), (200, 120, 90))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0xA431] = "SERIAL-123456"  # BodySerialNumber
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}  # GPS IFD
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


# --- recording and linking ----------------------------------------------------------------------------------


def test_bruising_is_linked_to_the_session_before_it_and_its_lots(t: Treat) -> None:
    older = signed_session(t, 20)
    last = signed_session(t, 5)
    today = t.clinic.today()
    recorded = event(
        t, "bruising", onset=today - timedelta(days=4), actions=("arnica",), clinical_note="Small."
    )
    links = list(recorded.session_links.all())
    assert [(link.session_id, link.primary, link.days_after) for link in links] == [(last.pk, True, 1)]
    assert links[0].practitioner_id == t.practitioner.pk and links[0].device_id == t.device.pk
    assert links[0].room_id == t.room.pk and links[0].session_date == last.session_date
    lots = set(recorded.lot_links.values_list("lot_id", "via", "session_id"))
    expected = {
        (lot.pk, "preparation", last.pk)
        for lot in (t.formulary.ha_lot, t.formulary.vitc_lot, t.formulary.saline_lot)
    }
    assert lots == expected
    assert older.pk not in {link.session_id for link in links}
    assert recorded.expected_end_on == today - timedelta(days=4) + timedelta(days=10)
    course = FollowUp.objects.get(event=recorded)
    assert (course.kind, course.due_on, course.assigned_to_id) == (
        "course",
        recorded.expected_end_on + timedelta(days=1),
        t.practitioner.pk,
    )
    audit = AuditEvent.objects.filter(action="adverse_event.record").latest("seq")
    assert audit.patient_id == t.patient.pk and audit.detail["sessions"] == [last.pk]


def test_an_infection_is_linked_to_every_session_of_the_twelve_weeks_and_opens_a_watch(t: Treat) -> None:
    first = signed_session(t, 100)
    second = signed_session(t, 60)
    third = signed_session(t, 30)
    today = t.clinic.today()
    onset = today - timedelta(days=10)
    infection = event(
        t, "infection", onset=onset, severity="moderate", actions=("culture", "oral-antibiotic")
    )
    linked = list(infection.session_links.order_by("-session_date").values_list("session_id", "primary"))
    # 100 days before today is 90 before the onset: outside the 84-day window.
    assert linked == [(third.pk, True), (second.pk, False)] and first.pk not in dict(linked)
    assert infection.lot_links.filter(session_id=second.pk).count() == 3
    follow_ups = {f.kind: f.due_on for f in FollowUp.objects.filter(event=infection)}
    assert follow_ups == {"course": onset, "infection-watch": onset + timedelta(days=84)}
    assert AuditEvent.objects.filter(action="safety.scan", clinic_id=t.clinic.pk).exists()


def test_a_direct_administration_before_an_infection_is_linked_as_a_lot(t: Treat) -> None:
    signed_session(t, 20)
    t.formulary.administer(t.patient, volume_ml="1")  # straight from the HA vial, today
    infection = event(t, "infection", onset=t.clinic.today())
    assert set(infection.lot_links.filter(via="administered").values_list("lot_id", "session_id")) == {
        (t.formulary.ha_lot.pk, None)
    }


def test_the_reporter_may_name_the_session(t: Treat) -> None:
    earlier = signed_session(t, 12)
    signed_session(t, 3)
    recorded = event(t, "bumps", onset=t.clinic.today() - timedelta(days=2), session_id=earlier.pk)
    assert list(recorded.session_links.values_list("session_id", "primary")) == [(earlier.pk, True)]


# --- bad input: refused, nothing written --------------------------------------------------------------------


def test_bad_dates_are_refused_naming_the_field_and_nothing_is_written(t: Treat) -> None:
    session = signed_session(t, 10)
    today = t.clinic.today()
    before = _counts()
    audit_before = AuditEvent.objects.count()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"onset": today - timedelta(days=5), "resolved_on": today - timedelta(days=6)}, "resolved_on"),
        ({"onset": today - timedelta(days=11)}, "onset_on"),  # before the patient's first session
        ({"onset": today + timedelta(days=1)}, "onset_on"),
        ({"onset": today - timedelta(days=3), "resolved_on": today + timedelta(days=1)}, "resolved_on"),
        ({"onset": today - timedelta(days=3), "outcome": "recovered"}, "resolved_on"),
        ({"onset": today - timedelta(days=3), "resolved_on": today, "outcome": "recovering"}, "outcome"),
        ({"onset": today, "area": "elbow-of-nowhere"}, "area"),
        ({"onset": today, "session_id": session.pk + 999}, "session_id"),
    ]
    for values, field_name in cases:
        onset = values.pop("onset")
        with pytest.raises(ValidationError) as caught:
            event(t, "bruising", onset=onset, **values)
        assert field_name in caught.value.message_dict, (values, caught.value.message_dict)
    with pytest.raises(ValidationError) as caught:
        event(t, "other", onset=today)
    assert "other_kind" in caught.value.message_dict
    assert _counts() == before and AuditEvent.objects.count() == audit_before


def test_an_onset_before_the_named_session_is_refused(t: Treat) -> None:
    signed_session(t, 12)
    later = signed_session(t, 3)
    with pytest.raises(ValidationError) as caught:
        event(t, "swelling", onset=t.clinic.today() - timedelta(days=5), session_id=later.pk)
    assert "before the session" in caught.value.message_dict["onset_on"][0]
    assert AdverseEvent.objects.count() == 0


def test_a_patient_of_another_clinic_or_reporting_for_someone_else_is_refused(t: Treat) -> None:
    signed_session(t, 5)
    outsider = staff(ClinicFactory.create(), Role.PRACTITIONER)
    with pytest.raises(PermissionDenied):
        event(t, "bruising", caller=Caller(user=outsider))
    # A patient reports only for themself.
    other = PatientFactory.create(clinic=t.clinic)
    stranger = portal_user(other)
    with pytest.raises(PermissionDenied):
        event(t, "bruising", caller=Caller(user=stranger))
    # The desk records no side effect.
    with pytest.raises(PermissionDenied):
        event(t, "bruising", caller=Caller(user=t.desk))
    assert AdverseEvent.objects.count() == 0


def test_the_patient_reports_for_themself_without_clinical_notes(t: Treat) -> None:
    signed_session(t, 4)
    own = portal_user(t.patient)
    with pytest.raises(ValidationError) as caught:
        event(t, "bruising", caller=Caller(user=own), clinical_note="I am a doctor")
    assert "clinical_note" in caught.value.message_dict
    report = event(t, "bruising", caller=Caller(user=own), description="A blue mark on my forehead.")
    assert report.reported_via == "patient" and report.reviewed_at is None
    assert AuditEvent.objects.filter(action="adverse_event.report", patient_id=t.patient.pk).count() == 1
    board = services.dashboard(caller=t.caller(), clinic=t.clinic)
    assert [e.pk for e in board.to_review] == [report.pk]
    services.event_review(caller=t.caller(), event=report)
    assert services.dashboard(caller=t.caller(), clinic=t.clinic).to_review == []


# --- the check-in gate: R-PRE-BRUISE ------------------------------------------------------------------------


def test_unresolved_bruising_from_the_previous_session_blocks_the_check_in(t: Treat) -> None:
    last = signed_session(t, 8)
    today = t.clinic.today()
    bruise = event(t, "bruising", onset=today - timedelta(days=7))
    t.prepare()
    with pytest.raises(FindingsRefused) as caught:
        t.check_in()
    blocks = [f for f in caught.value.findings if f.code == "bruising-unresolved"]
    assert [(f.severity, f.subject) for f in blocks] == [("block", str(bruise.pk))]
    assert last.session_date.isoformat() in blocks[0].message
    assert TreatmentSession.objects.filter(plan=t.plan).count() == 1
    services.event_update(
        caller=t.caller(), event=bruise, data=services.event_in(bruise, resolved_on=today - timedelta(days=1))
    )
    session = t.check_in()
    checked = [f for f in session.gate_findings if f["code"] == "bruising-unresolved"]
    assert [f["severity"] for f in checked] == ["info"]


def test_bruising_resolved_only_after_the_session_day_still_blocks_it(t: Treat) -> None:
    signed_session(t, 8)
    today = t.clinic.today()
    bruise = event(t, "bruising", onset=today - timedelta(days=6), resolved_on=today)
    assert services.bruising_gate(t.plan, today - timedelta(days=1))[0].severity == "block"
    assert services.bruising_gate(t.plan, today)[0].severity == "info"
    assert bruise.resolved_on == today


def test_other_side_effects_and_older_sessions_do_not_block(t: Treat) -> None:
    older = signed_session(t, 30)
    signed_session(t, 10)  # the previous session
    today = t.clinic.today()
    # Recorded late, both follow the older session (the last one on or before their onset).
    swelling = event(t, "swelling", onset=today - timedelta(days=29))
    old_bruise = event(t, "bruising", onset=today - timedelta(days=29))
    assert {link.session_id for e in (swelling, old_bruise) for link in e.session_links.all()} == {older.pk}
    event(t, "swelling", onset=today - timedelta(days=9))  # after the previous session, not a bruise
    findings = services.bruising_gate(t.plan, today)
    assert [(f.code, f.severity) for f in findings] == [("bruising-unresolved", "info")]
    assert old_bruise.is_open


# --- follow-up and the dashboard ----------------------------------------------------------------------------


def test_an_event_open_past_its_expected_course_shows_on_the_practitioners_dashboard(t: Treat) -> None:
    signed_session(t, 9)
    today = t.clinic.today()
    swelling = event(t, "swelling", onset=today - timedelta(days=8))  # "a day or two": 2 days
    within = event(t, "bruising", onset=today - timedelta(days=8))  # 10 days: not yet
    board = services.dashboard(caller=t.caller(), clinic=t.clinic)
    assert [f.event_id for f in board.due] == [swelling.pk]
    assert board.mine == frozenset({board.due[0].pk})
    assert (
        services.dashboard(caller=t.caller(), clinic=t.clinic, today=today + timedelta(days=3))
        .due[1]
        .event_id
        == within.pk
    )
    # Its resolution closes the follow-up by itself.
    services.event_update(
        caller=t.caller(), event=swelling, data=services.event_in(swelling, resolved_on=today)
    )
    follow_up = FollowUp.objects.get(event=swelling)
    assert follow_up.status == "resolved" and follow_up.closed_at is not None
    assert [f.event_id for f in services.dashboard(caller=t.caller(), clinic=t.clinic).due] == []


def test_an_infection_watch_is_closed_by_a_clinician_with_what_was_found(t: Treat) -> None:
    signed_session(t, 20)
    infection = event(t, "infection", onset=t.clinic.today() - timedelta(days=5))
    watch = FollowUp.objects.get(event=infection, kind="infection-watch")
    board = services.dashboard(caller=t.caller(), clinic=t.clinic)
    assert [f.pk for f in board.watches] == [watch.pk]
    with pytest.raises(ValidationError):
        services.follow_up_close(caller=t.caller(), follow_up=watch, note="  ")
    services.follow_up_close(caller=t.caller(), follow_up=watch, note="No recurrence at 12 weeks.")
    watch.refresh_from_db()
    assert watch.status == "done" and watch.closed_by_id == t.practitioner.pk
    with pytest.raises(PermissionDenied):
        services.dashboard(caller=Caller(user=t.desk), clinic=t.clinic)


def test_entered_in_error_unlinks_closes_and_keeps_the_record(t: Treat) -> None:
    signed_session(t, 20)
    infection = event(t, "infection", onset=t.clinic.today() - timedelta(days=5))
    with pytest.raises(ValidationError):
        services.event_retract(caller=t.caller(), event=infection, reason="")
    services.event_retract(caller=t.caller(), event=infection, reason="Wrong patient.")
    infection.refresh_from_db()
    assert infection.retracted_at is not None and infection.session_links.count() == 0
    assert set(FollowUp.objects.filter(event=infection).values_list("status", flat=True)) == {"done"}
    with pytest.raises(ValidationError):
        services.event_update(caller=t.caller(), event=infection, data=services.event_in(infection))


def test_changing_the_kind_to_infection_relinks_and_opens_the_watch(t: Treat) -> None:
    first = signed_session(t, 40)
    second = signed_session(t, 10)
    redness = event(t, "redness", onset=t.clinic.today() - timedelta(days=2))
    assert list(redness.session_links.values_list("session_id", flat=True)) == [second.pk]
    services.event_update(caller=t.caller(), event=redness, data=services.event_in(redness, kind="infection"))
    assert set(redness.session_links.values_list("session_id", flat=True)) == {first.pk, second.pk}
    assert FollowUp.objects.filter(event=redness, kind="infection-watch", status="open").exists()


# --- photos -------------------------------------------------------------------------------------------------


def test_a_photo_is_re_encoded_without_exif_and_shown_only_to_clinicians_and_the_patient(t: Treat) -> None:
    signed_session(t, 3)
    own = portal_user(t.patient)
    original = jpeg_with_gps()
    assert b"SERIAL-123456" in original and Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)
    report = services.event_record(
        caller=Caller(user=own),
        patient=t.patient,
        data=services.EventIn(kind="bruising", onset_on=t.clinic.today(), area="forehead"),
        photo=services.PhotoIn(original, "IMG_0042.JPG"),
    )
    assert report.photo_name.startswith("safety/events/") and "IMG_0042" not in report.photo_name
    stored = default_storage.open(report.photo_name).read()
    assert b"SERIAL-123456" not in stored and b"PhoneMaker" not in stored
    kept = Image.open(io.BytesIO(stored))
    assert kept.format == "JPEG" and len(kept.getexif()) == 0 and kept.size == (64, 48)
    content, kind = services.event_photo(caller=t.caller(), event=report)
    assert (content, kind) == (stored, "image/jpeg")
    assert services.event_photo(caller=Caller(user=own), event=report)[0] == stored
    with pytest.raises(PermissionDenied):
        services.event_photo(caller=Caller(user=t.desk), event=report)
    assert AuditEvent.objects.filter(action="adverse_event.photo_read", patient_id=t.patient.pk).count() == 2


BAD_UPLOADS = {
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "x.svg"),
    "html": (b"<!doctype html><html><body>hi</body></html>", "photo.jpg"),
    "exe": (b"MZ\x90\x00" + b"\x00" * 200, "photo.jpg"),
    "wrong-magic": (b"GIF89a" + b"\x00" * 100, "photo.png"),
    "traversal": (None, "../../etc/passwd.jpg"),
    "polyglot": (None, "photo.jpg"),
    "truncated": (None, "photo.jpg"),
    "pixel-flood": (None, "flood.png"),
    "oversize": (None, "big.jpg"),
}


def _bad(name: str) -> tuple[bytes, str]:
    data, filename = BAD_UPLOADS[name]
    if data is not None:
        return data, filename
    good = jpeg_with_gps()
    if name == "traversal":
        return good, filename
    if name == "polyglot":
        return good + b"<html><script>alert(1)</script></html>", filename
    if name == "truncated":
        return good[: len(good) // 2], filename
    if name == "pixel-flood":
        buffer = io.BytesIO()
        Image.new("1", (12000, 12000)).save(buffer, format="PNG")
        return buffer.getvalue(), filename
    return b"\xff\xd8\xff" + b"\x00" * (services.MAX_PHOTO_BYTES + 10), filename


@pytest.mark.parametrize("name", sorted(BAD_UPLOADS))
def test_bad_uploads_are_refused_and_nothing_is_written(t: Treat, name: str) -> None:
    signed_session(t, 3)
    data, filename = _bad(name)
    before = _counts()
    with pytest.raises(ValidationError) as caught:
        services.event_record(
            caller=t.caller(),
            patient=t.patient,
            data=services.EventIn(kind="bruising", onset_on=t.clinic.today()),
            photo=services.PhotoIn(data, filename),
        )
    assert "photo" in caught.value.message_dict
    assert _counts() == before


def test_a_correction_with_impossible_dates_is_refused_and_nothing_changes(t: Treat) -> None:
    session = signed_session(t, 6)
    today = t.clinic.today()
    bruise = event(t, "bruising", onset=today - timedelta(days=5))
    links = list(bruise.session_links.values_list("session_id", "primary"))
    audit_before = AuditEvent.objects.count()
    bad: list[tuple[dict[str, Any], str]] = [
        ({"onset_on": today - timedelta(days=7)}, "onset_on"),  # before the session it follows
        ({"resolved_on": today - timedelta(days=6)}, "resolved_on"),  # before the onset
        ({"onset_on": today - timedelta(days=2), "session_id": session.pk + 1000}, "session_id"),
    ]
    for changes, field_name in bad:
        with pytest.raises(ValidationError) as caught:
            services.event_update(caller=t.caller(), event=bruise, data=services.event_in(bruise, **changes))
        assert field_name in caught.value.message_dict
    bruise.refresh_from_db()
    assert bruise.onset_on == today - timedelta(days=5) and bruise.resolved_on is None
    assert list(bruise.session_links.values_list("session_id", "primary")) == links == [(session.pk, True)]
    assert AuditEvent.objects.count() == audit_before
    # Another clinic's staff cannot correct it.
    outsider = staff(ClinicFactory.create(), Role.PRACTITIONER)
    with pytest.raises(PermissionDenied):
        services.event_update(caller=Caller(user=outsider), event=bruise, data=services.event_in(bruise))
