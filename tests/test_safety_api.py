"""The safety API and pages over HTTP (issue 8): events (staff and the patient themself, with a photo),
follow-ups, refusals with the field at fault and nothing written, another clinic's records unseen."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from PIL import Image

from mesoclinic.accounts.models import Role
from mesoclinic.audit.models import AuditEvent
from mesoclinic.safety.models import AdverseEvent, FollowUp
from mesoclinic.treatments.models import TreatmentSession
from tests.conftest import client_for
from tests.factories import ClinicFactory, PatientFactory, staff
from tests.safety_support import portal_user, ready, signed_session
from tests.treatments_support import Treat

pytestmark = pytest.mark.django_db


@pytest.fixture
def t(db: None) -> Treat:
    t = ready()
    signed_session(t, 6)
    return t


def post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, data=json.dumps(body, default=str), content_type="application/json")


def put(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.put(url, data=json.dumps(body, default=str), content_type="application/json")


def fields(response: Any) -> set[str]:
    assert response.status_code == 422, response.content
    return {error["field"] for error in response.json()["errors"]}


def jpeg() -> bytes:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0xA431] = "SERIAL-99"
    Image.new("RGB", (30, 20), (10, 200, 30)).save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def test_staff_record_read_correct_and_list_an_event(t: Treat) -> None:
    client = client_for(t.practitioner)
    today = t.clinic.today()
    session = TreatmentSession.objects.get(plan=t.plan)
    url = f"/api/v1/patients/{t.patient.pk}/adverse-events"
    body = {
        "kind": "bruising",
        "onset_on": today - timedelta(days=5),
        "area": "forehead",
        "actions": ["arnica"],
    }
    created = post(client, url, body)
    assert created.status_code == 201, created.content
    event = created.json()
    assert [(s["session"], s["primary"], s["days_after"]) for s in event["sessions"]] == [
        (session.pk, True, 1)
    ]
    assert event["sessions"][0]["device_id"] == t.device.pk and event["sessions"][0]["room_id"] == t.room.pk
    assert {lot["lot"] for lot in event["lots"]} == {
        t.formulary.ha_lot.pk,
        t.formulary.vitc_lot.pk,
        t.formulary.saline_lot.pk,
    }
    assert [f["kind"] for f in event["follow_ups"]] == ["course"]
    formula = t.formulary.version.formula
    assert [(f["session"], f["formula"], f["name"]) for f in event["formulas"]] == [
        (session.pk, formula.pk, formula.name)
    ]
    page = client.get(f"/safety/events/{event['id']}/").content.decode()
    assert f'data-formula="{formula.pk}"' in page and 'id="event-lots"' in page
    assert event["expected_end_on"] == (today + timedelta(days=5)).isoformat()
    # Bad input: the field at fault, nothing changed.
    before = (AdverseEvent.objects.count(), AuditEvent.objects.count())
    assert fields(post(client, url, {**body, "resolved_on": today - timedelta(days=6)})) == {"resolved_on"}
    assert fields(post(client, url, {**body, "onset_on": today - timedelta(days=7)})) == {"onset_on"}
    assert fields(post(client, url, {**body, "kind": "sneezing"})) == {"kind"}
    assert fields(post(client, url, {**body, "area": "elbow-of-nowhere"})) == {"area"}
    assert (AdverseEvent.objects.count(), AuditEvent.objects.count()) == before
    event_url = f"/api/v1/adverse-events/{event['id']}"
    assert fields(put(client, event_url, {**body, "resolved_on": today - timedelta(days=6)})) == {
        "resolved_on"
    }
    assert AdverseEvent.objects.get(pk=event["id"]).resolved_on is None
    # The resolution closes the follow-up.
    fixed = put(client, event_url, {**body, "resolved_on": today}).json()
    assert fixed["outcome"] == "recovered" and fixed["follow_ups"][0]["status"] == "resolved"
    assert client.get(event_url).json()["resolved_on"] == today.isoformat()
    listed = client.get(url).json()
    assert [(e["id"], e["session"]) for e in listed] == [(event["id"], session.pk)]
    assert AuditEvent.objects.filter(action="adverse_event.read", patient_id=t.patient.pk).exists()
    # Entered in error.
    assert post(client, f"{event_url}/retract", {"reason": ""}).status_code == 422
    retracted = post(client, f"{event_url}/retract", {"reason": "Wrong patient."}).json()
    assert retracted["retracted_at"] and retracted["sessions"] == []


def test_another_clinic_and_the_desk_are_refused(t: Treat) -> None:
    url = f"/api/v1/patients/{t.patient.pk}/adverse-events"
    body = {"kind": "bruising", "onset_on": t.clinic.today()}
    outsider = client_for(staff(ClinicFactory.create(), Role.PRACTITIONER))
    assert post(outsider, url, body).status_code == 404
    assert outsider.get(url).status_code == 404
    assert post(client_for(t.desk), url, body).status_code == 403
    # A staff record in this clinic for a patient of another one: the id is not found.
    foreign = PatientFactory.create(clinic=ClinicFactory.create())
    assert (
        post(client_for(t.practitioner), f"/api/v1/patients/{foreign.pk}/adverse-events", body).status_code
        == 404
    )
    assert (
        post(client_for(t.practitioner), "/api/v1/patients/99999999999/adverse-events", body).status_code
        == 404
    )
    assert AdverseEvent.objects.count() == 0
    created = post(client_for(t.practitioner), url, body).json()
    assert outsider.get(f"/api/v1/adverse-events/{created['id']}").status_code == 404
    assert client_for(t.desk).get(f"/api/v1/adverse-events/{created['id']}/photo").status_code in (403, 404)


def test_the_patient_reports_for_themself_only_with_a_photo(t: Treat) -> None:
    own = portal_user(t.patient)
    client = client_for(own, verified=False)
    today = t.clinic.today()
    body = {"kind": "swelling", "onset_on": today - timedelta(days=2), "area": "forehead"}
    other = PatientFactory.create(clinic=t.clinic)
    assert post(client, f"/api/v1/patients/{other.pk}/adverse-events", body).status_code in (403, 404)
    assert client.get(f"/api/v1/patients/{other.pk}/adverse-events").status_code in (403, 404)
    staff_record = post(client_for(t.practitioner), f"/api/v1/patients/{t.patient.pk}/adverse-events", body)
    assert client.get(f"/api/v1/adverse-events/{staff_record.json()['id']}").status_code == 200  # their own
    assert client.get(f"/api/v1/adverse-events/{staff_record.json()['id']}").json()["clinical_note"] is None
    assert fields(
        post(client, f"/api/v1/patients/{t.patient.pk}/adverse-events", {**body, "clinical_note": "x"})
    ) == {"clinical_note"}
    created = post(client, f"/api/v1/patients/{t.patient.pk}/adverse-events", body)
    assert created.status_code == 201, created.content
    report = created.json()
    assert report["reported_via"] == "patient" and report["reviewed_at"] is None
    photo_url = f"/api/v1/adverse-events/{report['id']}/photo"
    upload = client.post(photo_url, {"photo": io.BytesIO(jpeg())})
    assert upload.status_code == 201, upload.content
    shown = client.get(photo_url)
    assert shown.status_code == 200 and shown["Cache-Control"].startswith("no-store")
    assert b"SERIAL-99" not in shown.content and Image.open(io.BytesIO(shown.content)).size == (30, 20)
    assert client.post(photo_url, {"photo": io.BytesIO(jpeg())}).status_code == 422  # one photo per event
    # The clinician reviews it; it leaves the dashboard's list.
    staff_client = client_for(t.practitioner)
    assert report["id"] in [e.pk for e in _to_review(staff_client)]
    assert post(staff_client, f"/api/v1/adverse-events/{report['id']}/review", {}).json()["reviewed_at"]
    assert report["id"] not in [e.pk for e in _to_review(staff_client)]


def _to_review(client: Client) -> list[AdverseEvent]:
    page = client.get("/safety/")
    assert page.status_code == 200
    return list(page.context["board"].to_review)


def test_the_portal_page_takes_a_report_with_a_photo(t: Treat) -> None:
    own = portal_user(t.patient)
    client = client_for(own, verified=False)
    assert client.get("/safety/portal/").status_code == 200
    today = t.clinic.today()
    photo = io.BytesIO(jpeg())
    photo.name = "IMG_1.jpg"
    bad = client.post(
        "/safety/portal/",
        {"kind": "bruising", "severity": "mild", "onset_on": today + timedelta(days=1), "area": "forehead"},
    )
    assert bad.status_code == 422 and AdverseEvent.objects.count() == 0
    sent = client.post(
        "/safety/portal/",
        {"kind": "bruising", "severity": "mild", "onset_on": today, "area": "forehead", "photo": photo},
    )
    assert sent.status_code == 302, sent.content.decode()[:2000]
    event = AdverseEvent.objects.get()
    assert event.reported_via == "patient" and event.has_photo and event.patient_id == t.patient.pk


def test_follow_ups_are_listed_and_closed_with_a_note(t: Treat) -> None:
    client = client_for(t.practitioner)
    today = t.clinic.today()
    body = {"kind": "infection", "onset_on": today - timedelta(days=3), "severity": "moderate"}
    event = post(client, f"/api/v1/patients/{t.patient.pk}/adverse-events", body).json()
    listed = client.get("/api/v1/follow-ups").json()
    assert sorted(f["kind"] for f in listed) == ["course", "infection-watch"]
    watch = next(f for f in listed if f["kind"] == "infection-watch")
    assert watch["due_on"] == (today - timedelta(days=3) + timedelta(days=84)).isoformat()
    assert watch["assigned_to"] == t.practitioner.pk and watch["event"] == event["id"]
    assert client.get("/api/v1/follow-ups?mine=true").json() == listed
    close = f"/api/v1/follow-ups/{watch['id']}/close"
    assert fields(post(client, close, {"note": " "})) == {"note"}
    done = post(client, close, {"note": "No recurrence at 12 weeks."}).json()
    assert done["status"] == "done"
    assert post(client, close, {"note": "again"}).status_code == 422
    assert FollowUp.objects.get(pk=watch["id"]).closed_by_id == t.practitioner.pk
    assert client_for(t.desk).get("/api/v1/follow-ups").status_code == 403
    board = client.get("/safety/")
    assert board.status_code == 200 and [f.kind for f in board.context["board"].due] == ["course"]
    kinds = client.get("/api/v1/adverse-event-kinds").json()
    assert len(kinds) == 15 and next(k for k in kinds if k["code"] == "infection")["link_window_days"] == 84
