"""The scheduling API over HTTP (issue 7, Build 7): availability, booking, series proposals, series booking,
check-in and cancellation — the refusals name their reason and write nothing, and another clinic's staff
reach nothing. The API runs on the real clock: the dates are the tests' next Mondays (always ahead)."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.utils import timezone

from mesoclinic.accounts.models import Role
from mesoclinic.audit.models import AuditEvent
from mesoclinic.scheduling import rules, services
from mesoclinic.scheduling.models import Appointment, Kind, Message
from mesoclinic.treatments.models import TreatmentSession
from tests.conftest import client_for
from tests.consent_support import ensure_gate_hook
from tests.factories import ClinicFactory, staff
from tests.scheduling_support import Sched, schedule

pytestmark = pytest.mark.django_db


def post(client: Any, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def _counts() -> tuple[int, int, int]:
    return Appointment.objects.count(), Message.objects.count(), AuditEvent.objects.count()


def _booking(s: Sched, day: Any, clock: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": s.t.patient.pk,
        "kind": "session",
        "practitioner_id": s.t.practitioner.pk,
        "room_id": s.t.room.pk,
        "plan_id": s.t.plan.pk,
        "date": day.isoformat(),
        "time": clock,
    }
    body.update(overrides)
    return body


def _codes(response: Any) -> list[str]:
    return [f["code"] for f in response.json().get("findings", []) if f["severity"] == "block"]


def test_availability_booking_and_its_refusals() -> None:
    s = schedule()
    desk = client_for(s.t.desk)
    tuesday = s.monday + timedelta(days=8)
    query: dict[str, str | int] = {
        "kind": "session",
        "date": tuesday.isoformat(),
        "days": 1,
        "practitioner": s.t.practitioner.pk,
    }
    free = desk.get("/api/v1/scheduling/availability", query)
    assert free.status_code == 200
    (day,) = free.json()
    assert day["date"] == tuesday.isoformat() and not day["closed"]
    first = day["slots"][0]
    assert first["local_start"].startswith(f"{tuesday.isoformat()}T09:00")
    made = post(desk, "/api/v1/scheduling/appointments", _booking(s, tuesday, "09:00"))
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["status"], body["series_number"], body["via"]) == ("booked", 1, "api")
    # The slot is gone from the availability.
    again = desk.get("/api/v1/scheduling/availability", query).json()
    assert all(
        not slot["local_start"].startswith(f"{tuesday.isoformat()}T09:00") for slot in again[0]["slots"]
    )

    refusals = {
        "in-the-past": _booking(s, s.monday - timedelta(days=14), "10:00", kind="consultation", plan_id=None),
        "outside-working-hours": _booking(s, tuesday, "18:00", kind="consultation", plan_id=None),
        "practitioner-busy": _booking(
            s, tuesday, "09:15", kind="consultation", plan_id=None, patient_id=s.other_patient().pk
        ),
        # Session 2 two days after session 1: sooner than the protocol's 7 days.
        "interval-too-short": _booking(s, tuesday + timedelta(days=2), "10:00"),
    }
    before = _counts()
    for code, request in refusals.items():
        refused = post(desk, "/api/v1/scheduling/appointments", request)
        assert refused.status_code == 422 and code in _codes(refused), (code, refused.content)
        assert refused.json()["detail"]
    assert _counts() == before
    # Malformed input names the field.
    bad = post(desk, "/api/v1/scheduling/appointments", _booking(s, tuesday, "25:00"))
    assert bad.status_code == 422 and any(e["field"].endswith("time") for e in bad.json()["errors"])
    assert _counts() == before


def test_series_proposals_and_series_booking() -> None:
    s = schedule(sessions=4)
    desk = client_for(s.t.desk)
    proposals = desk.get(f"/api/v1/scheduling/series/{s.t.plan.pk}")
    assert proposals.status_code == 200
    view = proposals.json()
    assert [p["number"] for p in view["proposals"]] == [1, 2, 3, 4]
    assert {p["state"] for p in view["proposals"]} == {"proposed"}
    picks = []
    for proposal in view["proposals"]:
        start = datetime.fromisoformat(proposal["slot"]["local_start"])
        picks.append(
            {
                "number": proposal["number"],
                "date": start.date().isoformat(),
                "time": start.strftime("%H:%M"),
                "practitioner_id": proposal["slot"]["practitioner"],
                "room_id": proposal["slot"]["room"],
            }
        )
    # Every session after the first is inside its window: earliest ≤ date ≤ latest.
    for proposal in view["proposals"][1:]:
        assert proposal["earliest"] <= proposal["slot"]["local_start"][:10] <= proposal["latest"]
    # One bad pick (session 3 on session 2's day): nothing is booked.
    broken = [dict(pick) for pick in picks]
    broken[2]["date"] = broken[1]["date"]
    before = _counts()
    refused = post(desk, f"/api/v1/scheduling/series/{s.t.plan.pk}/bookings", {"picks": broken})
    assert refused.status_code == 422 and _counts() == before
    booked = post(desk, f"/api/v1/scheduling/series/{s.t.plan.pk}/bookings", {"picks": picks})
    assert booked.status_code == 201, booked.content
    assert [row["series_number"] for row in booked.json()] == [1, 2, 3, 4]
    assert {p["state"] for p in desk.get(f"/api/v1/scheduling/series/{s.t.plan.pk}").json()["proposals"]} == {
        "booked"
    }


def test_cancellation_needs_a_known_reason() -> None:
    s = schedule()
    desk = client_for(s.t.desk)
    appointment = s.book(s.monday + timedelta(days=8), 10, now=timezone.now())
    url = f"/api/v1/scheduling/appointments/{appointment.pk}/cancel"
    assert post(desk, url, {"reason": "because"}).status_code == 422
    assert post(desk, url, {"reason": "other"}).status_code == 422  # "other" needs a note
    assert Appointment.objects.get(pk=appointment.pk).status == "booked"
    done = post(desk, url, {"reason": "bruising"})
    assert done.status_code == 200 and (done.json()["status"], done.json()["cancel_reason"]) == (
        "cancelled",
        "bruising",
    )
    assert post(desk, url, {"reason": "bruising"}).status_code == 422  # once


def test_check_in_through_the_api_runs_the_gate() -> None:
    s = schedule()
    zone = s.clinic.zone
    # An appointment today (the API checks in on the real day): booked by the services a day ago.
    local = timezone.now().astimezone(zone)
    clock = min(time(local.hour, local.minute - local.minute % 5), time(23, 0))
    today = local.date()
    services.exception_add(
        caller=s.caller(s.admin),
        clinic=s.clinic,
        practitioner_id=s.t.practitioner.pk,
        on=today,
        starts=time(0),
        ends=time(23, 55),
        available=True,
        reason="Long day",
    )
    starts = rules.resolve(today, clock, zone)
    appointment = s.book(today, clock.hour, clock.minute, now=starts - timedelta(days=1))
    url = f"/api/v1/scheduling/appointments/{appointment.pk}/check-in"
    # Another clinic's staff reach nothing.
    other = ClinicFactory.create()
    stranger = client_for(staff(other, Role.FRONT_DESK))
    assert post(stranger, url, {}).status_code in (403, 404)
    assert stranger.get(f"/api/v1/scheduling/appointments/{appointment.pk}").status_code in (403, 404)
    assert stranger.get(f"/api/v1/scheduling/series/{s.t.plan.pk}").status_code in (403, 404)
    assert Appointment.objects.get(pk=appointment.pk).status == "booked"
    done = post(client_for(s.t.desk), url, {})
    assert done.status_code == 200, done.content
    session = TreatmentSession.objects.get(plan=s.t.plan)
    assert (done.json()["status"], done.json()["treatment_session"]) == ("checked_in", session.pk)
    assert Message.objects.filter(appointment=appointment, kind="aftercare").exists()


def test_a_block_from_the_gate_refuses_the_check_in_with_its_reason() -> None:
    ensure_gate_hook()
    s = schedule(consented=False)
    zone = s.clinic.zone
    local = timezone.now().astimezone(zone)
    clock = min(time(local.hour, local.minute - local.minute % 5), time(23, 0))
    services.exception_add(
        caller=s.caller(s.admin),
        clinic=s.clinic,
        practitioner_id=s.t.practitioner.pk,
        on=local.date(),
        starts=time(0),
        ends=time(23, 55),
        available=True,
    )
    starts = rules.resolve(local.date(), clock, zone)
    appointment = s.book(local.date(), clock.hour, clock.minute, now=starts - timedelta(days=1))
    refused = post(client_for(s.t.desk), f"/api/v1/scheduling/appointments/{appointment.pk}/check-in", {})
    assert refused.status_code == 422 and "no-consent" in _codes(refused)
    assert Appointment.objects.get(pk=appointment.pk).status == "booked"
    assert not TreatmentSession.objects.filter(plan=s.t.plan).exists()
    assert appointment.kind == Kind.SESSION
