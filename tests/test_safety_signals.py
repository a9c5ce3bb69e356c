"""Signals and the safety report on generated clinics in the real database (issue 8; R-SIGNAL, R-EVID).

The published outbreak shape (Paris 2007: 16 infections among 105 patients treated with one multi-injector
gun) is reproduced on bulk-inserted sessions; the infections are recorded through the services, which link
them to their sessions and rescan the clinic. The signal must fire for the gun and for no other source. A lot
outbreak raises a lot signal that links to the lot's recall. The report's rates and Wilson intervals are
compared with statsmodels on counts computed independently from the generated data."""

from __future__ import annotations

import csv
import io
import random
import re
from collections import Counter
from datetime import date, timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pypdf import PdfReader
from statsmodels.stats.proportion import proportion_confint  # type: ignore[import-untyped]

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role
from mesoclinic.audit.models import AuditEvent
from mesoclinic.safety import documents, services
from mesoclinic.safety.models import SafetySettings, SafetySignal
from tests.conftest import client_for
from tests.factories import staff
from tests.safety_support import Generated, generate

pytestmark = pytest.mark.django_db


def _gun(rng: random.Random, index: int, _session: int, _day: date) -> dict[str, Any] | None:
    """The first 105 patients were treated with device 0, the gun; the others never."""
    return {"device": 0} if index < 105 else None


def outbreak(background: int = 1) -> tuple[Generated, set[int]]:
    g = generate(patients=305, sessions_per_patient=1, days_back=80, assign=_gun)
    rng = random.Random(16)
    gun_patients = [p.pk for p in g.patients[:105]]
    infected = set(rng.sample(gun_patients, 16))
    for patient_id in sorted(infected):
        (_sid, day, *_rest) = g.sessions_of[patient_id][-1]
        g.infect(patient_id, min(g.today, day + timedelta(days=rng.randrange(7, 21))), severity="moderate")
    for patient in g.patients[105 : 105 + background]:
        (_sid, day, *_rest) = g.sessions_of[patient.pk][-1]
        g.infect(patient.pk, min(g.today, day + timedelta(days=10)))
    return g, infected


def test_the_paris_outbreak_fires_for_the_gun_and_for_no_other_source() -> None:
    g, infected = outbreak()
    gun = g.devices[0]
    signals = list(SafetySignal.objects.filter(clinic=g.clinic, active=True))
    alerts = [s for s in signals if s.level == "alert"]
    assert [(s.source_kind, s.source_key) for s in alerts] == [("device", str(gun.pk))]
    alert = alerts[0]
    assert (alert.cases, alert.exposed, alert.exposed_sessions) == (16, 105, 105)
    assert alert.rate == pytest.approx(16 / 105)
    assert (alert.baseline_cases, alert.baseline_patients) == (1, 200)
    assert alert.adjusted_p < 1e-6 and alert.source_label == f"{gun.name} ({gun.identifier})"
    assert set(alert.evidence["patients"]) == infected and len(alert.evidence["events"]) == 16
    # Every other source is at most a cluster to review, and those inside the outbreak point at the gun.
    others = [s for s in signals if s is not alert]
    assert all(s.level == "cluster" for s in others)
    assert not [s for s in others if s.source_kind == "device"]
    for cluster in others:
        if set(cluster.evidence["patients"]) <= infected:
            assert cluster.evidence["within"] == [["device", str(gun.pk)]]
    # The scan is audited, with the signal it found.
    scan = AuditEvent.objects.filter(action="safety.scan", clinic_id=g.clinic.pk).latest("seq")
    assert ["device", str(gun.pk), "alert"] in scan.detail["signals"]

    # The evidence is shown: the 16 infections and their sessions with the gun, to the medical director.
    client = client_for(g.director)
    page = client.get(f"/safety/signals/{alert.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("data-event=") == 16 and html.count("data-session=") == 16
    assert gun.identifier in html and 'data-level="alert"' in html
    assert AuditEvent.objects.filter(action="safety_signal.read", object_id=str(alert.pk)).exists()
    # The API lists the alert first, with its evidence on its own page.
    listed = client.get("/api/v1/safety/signals").json()
    assert (listed[0]["source_kind"], listed[0]["level"]) == ("device", "alert")
    detail = client.get(f"/api/v1/safety/signals/{alert.pk}").json()
    assert len(detail["events"]) == 16
    # A practitioner of another clinic sees none of it.
    outsider = client_for(staff(generate_clinic(), Role.MEDICAL_DIRECTOR))
    assert outsider.get(f"/safety/signals/{alert.pk}/").status_code == 404
    assert outsider.get(f"/api/v1/safety/signals/{alert.pk}").status_code == 404


def generate_clinic() -> Any:
    from tests.factories import ClinicFactory

    return ClinicFactory.create()


def test_infections_that_share_no_source_raise_nothing() -> None:
    g = generate(patients=200, sessions_per_patient=1, days_back=80, seed=3)
    first = g.patients[0]
    _sid, day, practitioner, room, device, lot = g.sessions_of[first.pk][-1]
    second = next(
        p
        for p in g.patients[1:]
        if (row := g.sessions_of[p.pk][-1])[1] != day
        and row[2] != practitioner
        and row[3] != room
        and (row[4] is None or row[4] != device)
        and row[5] != lot
    )
    for patient in (first, second):
        (_sid, on, *_rest) = g.sessions_of[patient.pk][-1]
        g.infect(patient.pk, min(g.today, on + timedelta(days=5)))
    assert not SafetySignal.objects.filter(clinic=g.clinic).exists()
    assert AuditEvent.objects.filter(action="safety.scan", clinic_id=g.clinic.pk).count() == 2


def test_a_lot_outbreak_links_the_signal_to_the_lot_recall() -> None:
    def assign(rng: random.Random, index: int, _session: int, _day: date) -> dict[str, Any]:
        return {"lot": 6 if index < 60 else rng.randrange(6), "device": None}

    g = generate(patients=260, sessions_per_patient=1, lots=7, days_back=70, rooms=4, seed=5, assign=assign)
    bad = g.lots[6]
    rng = random.Random(6)
    for patient in rng.sample(g.patients[:60], 9):
        (_sid, day, *_rest) = g.sessions_of[patient.pk][-1]
        g.infect(patient.pk, min(g.today, day + timedelta(days=12)))
    alerts = list(SafetySignal.objects.filter(clinic=g.clinic, level="alert"))
    assert [(s.source_kind, s.lot_id) for s in alerts] == [("lot", bad.pk)]
    assert (alerts[0].cases, alerts[0].exposed) == (9, 60)
    html = client_for(g.director).get(f"/safety/signals/{alerts[0].pk}/").content.decode()
    assert f'action="{reverse("formulary:lot_recall", args=[bad.pk])}"' in html  # the recall form
    assert f'href="{reverse("formulary:lot", args=[bad.pk])}"' in html
    assert client_for(g.director).get("/api/v1/safety/signals").json()[0]["recall_url"] == reverse(
        "formulary:lot", args=[bad.pk]
    )
    assert 'id="signal-recall"' in html
    evidence = services.signal_evidence(caller=g.caller, signal=alerts[0])
    assert evidence.can_recall
    # Reviewing says what was done; a review without a note is refused.
    with pytest.raises(ValidationError):
        services.signal_review(caller=g.caller, signal=alerts[0], note=" ")
    reviewed = services.signal_review(caller=g.caller, signal=alerts[0], note="Lot recalled.")
    assert reviewed.status == "reviewed"
    # A new case reopens it.
    uninfected = [p for p in g.patients[:60] if p.pk not in alerts[0].evidence["patients"]]
    (_sid, day, *_rest) = g.sessions_of[uninfected[0].pk][-1]
    g.infect(uninfected[0].pk, min(g.today, day + timedelta(days=3)))
    reviewed.refresh_from_db()
    assert reviewed.status == "open" and reviewed.cases == 10


def test_a_retracted_infection_ends_a_signal_that_needed_it() -> None:
    def assign(rng: random.Random, index: int, _session: int, _day: date) -> dict[str, Any]:
        return {"device": 0} if index < 3 else {"device": None}

    g = generate(patients=40, sessions_per_patient=1, days_back=60, seed=9, assign=assign)
    first = g.patients[0]
    events = []
    for patient in g.patients[:2]:
        (_sid, day, *_rest) = g.sessions_of[patient.pk][-1]
        events.append(g.infect(patient.pk, min(g.today, day + timedelta(days=4))))
    device = SafetySignal.objects.get(clinic=g.clinic, source_kind="device")
    assert device.active and device.cases == 2
    services.event_retract(caller=g.caller, event=events[0], reason="Not an infection: a cyst.")
    device.refresh_from_db()
    assert not device.active and device.cases == 2  # kept, with its evidence, no longer found
    assert first.pk in device.evidence["patients"]


def test_the_signal_scan_settings_are_the_clinics(db: None) -> None:
    g, _infected = outbreak(background=0)
    SafetySettings.objects.create(clinic=g.clinic, signal_min_infections=20)
    found = services.signals_scan(caller=g.caller, clinic=g.clinic)
    assert found.result.signals == ()
    assert not SafetySignal.objects.filter(clinic=g.clinic, active=True).exists()
    with pytest.raises(PermissionDenied):
        services.signals_scan(caller=Caller(user=g.practitioners[0]), clinic=g.clinic)
    with pytest.raises(ValidationError):
        services.settings_update(caller=g.caller, clinic=g.clinic, values={"signal_min_infections": 1})


def test_scan_queries_do_not_grow_with_the_data() -> None:
    small, _ = outbreak(background=0)
    with CaptureQueriesContext(connection) as few:
        services.scan_clinic(clinic=small.clinic, actor=services.SYSTEM_ACTOR)
    big = generate(patients=400, sessions_per_patient=2, days_back=150, seed=4)
    for patient in big.patients[:30]:
        (_sid, day, *_rest) = big.sessions_of[patient.pk][-1]
        big.infect(patient.pk, min(big.today, day + timedelta(days=3)))
    with CaptureQueriesContext(connection) as many:
        services.scan_clinic(clinic=big.clinic, actor=services.SYSTEM_ACTOR)
    signals_small = SafetySignal.objects.filter(clinic=small.clinic).count()
    signals_big = SafetySignal.objects.filter(clinic=big.clinic).count()
    # Reads are fixed; only the signal rows written (one per source found) add a query each.
    assert len(many) - signals_big == len(few) - signals_small


# --- the safety report (R-EVID) -----------------------------------------------------------------------------


def test_rates_per_100_sessions_match_statsmodels_on_the_same_counts() -> None:
    g = generate(
        patients=120,
        sessions_per_patient=2,
        practitioners=3,
        days_back=150,
        seed=12,
        protocols=("facial-rejuvenation", "cellulite"),
    )
    rng = random.Random(12)
    followed: set[int] = set()  # sessions followed by an event
    for patient in rng.sample(g.patients, 25):
        session_id, day, *_rest = g.sessions_of[patient.pk][-1]
        g.infect(patient.pk, min(g.today, day + timedelta(days=1)), kind="bruising", area="forehead")
        followed.add(session_id)
    # A retracted event counts for nothing.
    extra = next(p for p in g.patients if g.sessions_of[p.pk][-1][0] not in followed)
    session_id, day, *_rest = g.sessions_of[extra.pk][-1]
    wrong = g.infect(extra.pk, min(g.today, day + timedelta(days=1)), kind="swelling", area="forehead")
    services.event_retract(caller=g.caller, event=wrong, reason="Wrong patient.")

    report = services.safety_report(caller=g.caller, clinic=g.clinic, start=g.today - timedelta(days=200))
    every = [row for rows in g.sessions_of.values() for row in rows]
    assert report.total is not None
    assert (report.total.sessions, report.total.with_event) == (len(every), len(followed))
    n_by: Counter[int] = Counter(row[2] for row in every)
    k_by: Counter[int] = Counter(row[2] for row in every if row[0] in followed)
    assert {int(r.key): (r.sessions, r.with_event) for r in report.by_practitioner} == {
        p: (n, k_by[p]) for p, n in n_by.items()
    }
    for row in [
        report.total,
        *report.by_practitioner,
        *report.by_protocol,
        *report.by_formula,
        *report.by_area,
    ]:
        low, high = proportion_confint(row.with_event, row.sessions, alpha=0.05, method="wilson")
        assert row.per_100 == pytest.approx(100 * row.with_event / row.sessions)
        assert row.low_per_100 == pytest.approx(100 * low, abs=1e-9)
        assert row.high_per_100 == pytest.approx(100 * high, abs=1e-9)
        assert row.small_sample is (row.sessions < 30)
    assert sorted(r.sessions for r in report.by_protocol) == [120, 120]
    assert [(r.sessions, r.with_event) for r in report.by_formula] == [(240, 25)]
    assert [(r.key, r.sessions, r.with_event) for r in report.by_area] == [("forehead", 240, 25)]
    # By kind: only bruising was kept.
    swelling = services.safety_report(caller=g.caller, clinic=g.clinic, kind="swelling", start=report.start)
    assert swelling.total is not None and swelling.total.with_event == 0
    with pytest.raises(ValidationError):
        services.safety_report(caller=g.caller, clinic=g.clinic, kind="sneezing")
    with pytest.raises(ValidationError):
        services.safety_report(
            caller=g.caller, clinic=g.clinic, start=g.today, end=g.today - timedelta(days=1)
        )

    # CSV and PDF, aggregates only.
    text = documents.report_csv(report)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1][:4] == ["section", "key", "label", "sessions"]
    assert ["all", "all", "All sessions", str(len(every)), str(len(followed))] == rows[2][:5]
    assert "Patient0" not in text and {r[0] for r in rows[2:]} == {
        "all",
        "protocol",
        "formula",
        "practitioner",
        "area",
    }
    pdf = documents.report_pdf(report)
    assert pdf.startswith(b"%PDF")
    words = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Prac0" in words and "Patient0" not in words


def test_small_samples_are_labelled_in_the_report_and_its_csv() -> None:
    g = generate(patients=20, sessions_per_patient=1, days_back=40, seed=8)
    report = services.safety_report(caller=g.caller, clinic=g.clinic)
    assert report.total is not None and report.total.small_sample
    client = client_for(g.director)
    page = client.get("/safety/report/")
    assert page.status_code == 200 and "small sample" in page.content.decode().lower()
    csv_response = client.get("/safety/report.csv")
    assert csv_response["Content-Type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(csv_response.content.decode())))[2][-1] == "yes"
    pdf = client.get("/api/v1/safety/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    data = client.get("/api/v1/safety/report").json()
    assert data["total"]["sessions"] == 20 and data["total"]["small_sample"] is True
    assert client.get("/api/v1/safety/report?kind=sneezing").status_code == 422
    # A researcher sees the aggregates; the front desk does not.
    researcher = staff(g.clinic, Role.RESEARCHER)
    assert client_for(researcher).get("/api/v1/safety/report").status_code == 200
    desk = staff(g.clinic, Role.FRONT_DESK)
    assert client_for(desk).get("/api/v1/safety/report").status_code == 403


def test_the_daily_scan_command_reports_every_clinic() -> None:
    g = generate(patients=30, sessions_per_patient=1, days_back=40, seed=21, assign=_gun)
    for patient in g.patients[:3]:
        (_sid, day, *_rest) = g.sessions_of[patient.pk][-1]
        g.infect(patient.pk, min(g.today, day + timedelta(days=2)))
    out = io.StringIO()
    call_command("safety_scan", "--clinic", str(g.clinic.pk), stdout=out)
    text = out.getvalue()
    assert f"clinic {g.clinic.pk} " in text and "3 infections" in text
    assert re.search(
        r"safety_scan: 1 clinics, 3 infections, \d+ signals \(\d+ alerts\) in [\d.]+ s, \d+ queries", text
    )
    assert AuditEvent.objects.filter(action="safety.scan", role="system", clinic_id=g.clinic.pk).exists()


def test_settings_are_changed_by_the_medical_director_and_audited() -> None:
    g = generate(patients=5, sessions_per_patient=1, days_back=20, seed=22)
    changed = services.settings_update(
        caller=g.caller, clinic=g.clinic, values={"signal_window_days": 56, "small_sample_sessions": 10}
    )
    assert services.settings_of(g.clinic).signal_settings().window_days == 56 and changed.pk
    audit = AuditEvent.objects.filter(action="safety_settings.write", clinic_id=g.clinic.pk).latest("seq")
    assert (
        audit.detail["before"]["signal_window_days"] == "84"
        and audit.detail["after"]["signal_window_days"] == "56"
    )
    for values in ({"signal_window_days": 7}, {"signal_alpha": "0.9"}, {"nonsense": 1}):
        with pytest.raises(ValidationError):
            services.settings_update(caller=g.caller, clinic=g.clinic, values=values)
    assert services.settings_of(g.clinic).signal_window_days == 56
    with pytest.raises(PermissionDenied):
        services.settings_update(caller=Caller(user=g.practitioners[0]), clinic=g.clinic, values={})


def test_the_report_runs_a_fixed_number_of_queries_whatever_the_size() -> None:
    counts = []
    for patients in (10, 150):
        g = generate(patients=patients, sessions_per_patient=2, days_back=60, seed=patients)
        for patient in g.patients[: patients // 5]:
            (_sid, day, *_rest) = g.sessions_of[patient.pk][-1]
            g.infect(patient.pk, min(g.today, day + timedelta(days=1)), kind="redness", area="forehead")
        with CaptureQueriesContext(connection) as queries:
            services.safety_report(caller=g.caller, clinic=g.clinic)
        counts.append(len(queries))
    assert counts[0] == counts[1]
