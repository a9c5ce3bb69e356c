"""The treatments API over HTTP (the test client), its error shapes, the pages, the aftercare PDF, and the
query
counts of opening and saving a chart — the same at every data size (targets.md: bounded queries)."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pypdf import PdfReader

from mesoclinic.audit.models import Action, AuditEvent
from mesoclinic.treatments import services
from mesoclinic.treatments.models import ChartedArea, TreatmentSession
from tests.conftest import client_for
from tests.consent_support import give_consent
from tests.treatments_support import Treat, centre, sign, treat

pytestmark = pytest.mark.django_db

# Asserted constants (issue 5 note): the chart page, the chart API, a chart save and the plan page run this
# many queries whatever the number of sessions, areas or points.
CHART_PAGE_QUERIES = 19
CHART_API_QUERIES = 11
CHART_SAVE_QUERIES = 35
PLAN_PAGE_QUERIES = 18


@pytest.fixture
def t(db: None) -> Treat:
    return treat()


def _chart_body(t: Treat, preparation: int, **overrides: Any) -> dict[str, Any]:
    area = {
        "area": "forehead",
        "technique": "nappage",
        "depth_mm": "1.5",
        "points": [centre(t.area("forehead"))],
        "injections": 40,
        "volume_per_point_ml": "0.02",
        "preparation_id": preparation,
    }
    area.update(overrides)
    return {"areas": [area], "topical_anaesthetic": "none"}


def put(client: Any, url: str, body: dict[str, Any]) -> Any:
    return client.put(url, data=json.dumps(body), content_type="application/json")


def post(client: Any, url: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def test_a_series_over_the_api(t: Treat) -> None:
    client = client_for(t.practitioner)
    gate = client.get(f"/api/v1/plans/{t.plan.pk}/gate").json()
    assert gate["can_start"] is True
    assert {f["code"] for f in gate["findings"]} >= {"consent-valid", "bruising-unresolved"}
    preparation = t.prepare()
    session = post(
        client, f"/api/v1/plans/{t.plan.pk}/sessions", {"room_id": t.room.pk, "device_id": t.device.pk}
    )
    assert session.status_code == 201, session.content
    session_id = session.json()["id"]
    saved = put(client, f"/api/v1/sessions/{session_id}/chart", _chart_body(t, preparation.pk))
    assert saved.status_code == 200, saved.content
    body = saved.json()
    assert body["areas"][0]["points"] == [centre(t.area("forehead"))]
    assert body["areas"][0]["lots"] == sorted(
        {line.lot.number for line in preparation.lines.select_related("lot")}
    )
    signed = post(client, f"/api/v1/sessions/{session_id}/sign")
    assert signed.json()["status"] == "signed"
    aftercare = client.get(f"/api/v1/sessions/{session_id}/aftercare").json()
    assert aftercare["instructions"][0]["code"] == "bruising"
    plan = client.get(f"/api/v1/plans/{t.plan.pk}").json()
    assert (plan["sessions_signed"], plan["planned_sessions"]) == (1, 6)
    assert plan["next_earliest"] is not None and plan["alternatives"]


def test_saving_a_chart_again_answers_what_is_stored(t: Treat) -> None:
    client = client_for(t.practitioner)
    first, second = t.prepare(), t.prepare()
    session = t.check_in()
    url = f"/api/v1/sessions/{session.pk}/chart"
    assert put(client, url, _chart_body(t, first.pk)).status_code == 200
    rows = list(ChartedArea.objects.filter(session=session).values_list("id", flat=True))
    again = put(client, url, _chart_body(t, first.pk))  # the same chart: saved, audited, rows kept
    assert again.status_code == 200, again.content
    assert again.json() == client.get(f"/api/v1/sessions/{session.pk}").json()
    assert list(ChartedArea.objects.filter(session=session).values_list("id", flat=True)) == rows
    charts = AuditEvent.objects.filter(action=Action.SESSION_CHART, object_id=str(session.pk))
    assert charts.count() == 2
    changed = put(client, url, _chart_body(t, second.pk, injections=30))  # another preparation: replaced
    assert changed.status_code == 200, changed.content
    assert changed.json() == client.get(f"/api/v1/sessions/{session.pk}").json()
    assert changed.json()["areas"][0]["injections"] == 30
    assert list(session.preparations_used.values_list("preparation_id", flat=True)) == [second.pk]
    assert charts.count() == 3


def test_refusals_carry_the_findings(t: Treat) -> None:
    client = client_for(t.practitioner)
    preparation = t.prepare()
    session = t.check_in()
    response = put(
        client, f"/api/v1/sessions/{session.pk}/chart", _chart_body(t, preparation.pk, depth_mm="3")
    )
    assert response.status_code == 422
    body = response.json()
    assert {f["code"] for f in body["findings"]} == {"depth-out-of-range"}
    keys = [f["key"] for f in body["findings"]]
    acknowledged = {
        **_chart_body(t, preparation.pk, depth_mm="3"),
        "acknowledgements": [{"key": k, "reason": "thick skin"} for k in keys],
    }
    assert put(client, f"/api/v1/sessions/{session.pk}/chart", acknowledged).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"depth_mm": "13.5"}, "areas.0.depth_mm"),
        ({"depth_mm": "0"}, "areas.0.depth_mm"),
        ({"volume_per_point_ml": "-0.1"}, "areas.0.volume_per_point_ml"),
        ({"points": [[500, 500]]}, "areas.0.points"),
        ({"area": "elbow"}, "areas.0.area"),
        ({"technique": "acupuncture"}, "areas.0.technique"),
        ({"preparation_id": 999999}, "areas.0.preparation_id"),
        ({"points": []}, "areas.0.points"),
        ({"depth_mm": "deep"}, "areas.0.depth_mm"),
    ],
)
def test_bad_charts_are_422_with_the_field_and_nothing_is_written(
    t: Treat, overrides: dict[str, Any], field: str
) -> None:
    client = client_for(t.practitioner)
    preparation = t.prepare()
    session = t.check_in()
    audit_rows = AuditEvent.objects.count()
    response = put(
        client, f"/api/v1/sessions/{session.pk}/chart", _chart_body(t, preparation.pk, **overrides)
    )
    assert response.status_code == 422, response.content
    assert field in {error["field"] for error in response.json()["errors"]}
    assert not ChartedArea.objects.filter(session=session).exists()
    assert AuditEvent.objects.count() == audit_rows


def test_charting_a_plan_that_is_not_active_is_refused(t: Treat) -> None:
    client = client_for(t.practitioner)
    preparation = t.prepare()
    session = t.check_in()
    services.plan_end(caller=t.caller(), plan=t.plan, status="stopped", reason="Patient asked to stop.")
    response = put(client, f"/api/v1/sessions/{session.pk}/chart", _chart_body(t, preparation.pk))
    assert response.status_code == 422
    assert "not active" in response.content.decode()


def test_a_blocked_check_in_answers_422_with_findings_and_opens_nothing(t: Treat) -> None:
    from mesoclinic.accounts.models import PractitionerLicence

    PractitionerLicence.objects.filter(user=t.practitioner).delete()
    client = client_for(t.practitioner)
    response = post(client, f"/api/v1/plans/{t.plan.pk}/sessions")
    assert response.status_code == 422
    assert "licence-invalid" in {f["code"] for f in response.json()["findings"]}
    assert not TreatmentSession.objects.exists()


def test_the_openapi_lists_the_treatments_endpoints(t: Treat) -> None:
    paths = client_for(t.practitioner).get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/api/v1/protocols",
        "/api/v1/plans/{plan_id}/gate",
        "/api/v1/plans/{plan_id}/sessions",
        "/api/v1/sessions/{session_id}/chart",
        "/api/v1/sessions/{session_id}/amendments",
        "/api/v1/body-areas",
    ):
        assert path in paths, path


def test_the_aftercare_pdf_holds_the_instructions_and_is_an_attachment(t: Treat) -> None:
    t.patient.preferred_language = "en"
    t.patient.save()
    preparation = t.prepare()
    session = t.check_in()
    t.chart(session, t.chart_area(preparation))
    sign(t, session)
    response = client_for(t.desk).get(f"/treatments/sessions/{session.pk}/aftercare.pdf")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert "no-store" in response["Cache-Control"]
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "After your treatment" in text
    assert "12 weeks" in text.replace("\n", " ")
    assert AuditEvent.objects.filter(action="aftercare.print", patient_id=t.patient.pk).exists()


def test_the_portal_shows_the_patient_their_series_and_aftercare(t: Treat) -> None:
    from tests.factories import UserFactory

    user = UserFactory.create()
    t.patient.user = user
    t.patient.save()
    preparation = t.prepare()
    session = t.check_in()
    t.chart(session, t.chart_area(preparation))
    sign(t, session)
    page = client_for(user, verified=False).get("/treatments/portal/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "1 of 6 sessions done" in html
    assert f"/treatments/sessions/{session.pk}/aftercare/" in html
    assert "Well tolerated" not in html  # never the clinical notes


# --- pages --------------------------------------------------------------------------------------------------


def test_the_chart_page_draws_the_body_map_and_saves_a_posted_chart(t: Treat) -> None:
    client = client_for(t.practitioner)
    preparation = t.prepare()
    session = t.check_in()
    page = client.get(f"/treatments/sessions/{session.pk}/chart/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-area="forehead"' in html and 'id="area-card-template"' in html
    assert "<script>" not in html  # CSP: no inline script
    point = centre(t.area("forehead"))
    response = client.post(
        f"/treatments/sessions/{session.pk}/chart/",
        {
            "areas-TOTAL_FORMS": "1",
            "areas-INITIAL_FORMS": "0",
            "areas-0-area": "forehead",
            "areas-0-points": json.dumps([point]),
            "areas-0-technique": "nappage",
            "areas-0-depth_mm": "1.5",
            "areas-0-injections": "30",
            "areas-0-volume_per_point_ml": "0.02",
            "areas-0-preparation": str(preparation.pk),
            "topical_anaesthetic": "none",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    row = ChartedArea.objects.get(session=session)
    assert row.points == [point] and row.total_volume_ml == Decimal("0.600")


def test_the_chart_page_shows_warnings_with_reason_fields(t: Treat) -> None:
    client = client_for(t.practitioner)
    preparation = t.prepare()
    session = t.check_in()
    form = {
        "areas-TOTAL_FORMS": "1",
        "areas-INITIAL_FORMS": "0",
        "areas-0-area": "forehead",
        "areas-0-points": json.dumps([centre(t.area("forehead"))]),
        "areas-0-technique": "nappage",
        "areas-0-depth_mm": "3",
        "areas-0-injections": "30",
        "areas-0-volume_per_point_ml": "0.02",
        "areas-0-preparation": str(preparation.pk),
        "topical_anaesthetic": "none",
    }
    refused = client.post(f"/treatments/sessions/{session.pk}/chart/", form)
    assert refused.status_code == 422
    html = refused.content.decode()
    assert 'name="ack:depth-out-of-range:forehead:technique"' in html
    accepted = client.post(
        f"/treatments/sessions/{session.pk}/chart/",
        {
            **form,
            "ack:depth-out-of-range:forehead:technique": "Thick skin.",
            "ack:depth-out-of-range:forehead:protocol": "Thick skin.",
        },
    )
    assert accepted.status_code == 302


def test_the_patient_page_loads_the_plans_panel(t: Treat) -> None:
    client = client_for(t.desk)
    detail = client.get(f"/patients/{t.patient.pk}/").content.decode()
    assert f"/treatments/patients/{t.patient.pk}/plans/panel/" in detail
    panel = client.get(f"/treatments/patients/{t.patient.pk}/plans/panel/").content.decode()
    assert "0 of 6 sessions" in panel


def test_the_plan_page_shows_each_session_and_hides_notes_from_the_desk(t: Treat) -> None:
    preparation = t.prepare()
    session = t.check_in()
    t.chart(session, t.chart_area(preparation), notes="Private clinical note.")
    sign(t, session)
    desk = client_for(t.desk).get(f"/treatments/plans/{t.plan.pk}/").content.decode()
    assert "1 of 6 sessions done" in desk
    assert "Private clinical note" not in desk
    practitioner_session = (
        client_for(t.practitioner).get(f"/treatments/sessions/{session.pk}/").content.decode()
    )
    assert "Private clinical note" in practitioner_session


# --- query counts ------------------------------------------------------------------------------------------


def _grow(sessions: int) -> tuple[Treat, TreatmentSession]:
    """``sessions`` signed sessions of four areas each, then an open one: the series a chart opens in."""
    from datetime import timedelta

    from django.utils import timezone

    start = timezone.now() - timedelta(days=8 * (sessions + 1))
    t = treat(consented=False)
    give_consent(t.plan, t.practitioner, now=start)  # signed before the first session
    t.plan.planned_sessions = 8
    t.plan.save()
    for number in range(sessions):
        moment = start + timedelta(days=8 * number)
        preparation = t.prepare(now=moment)
        session = t.check_in(now=moment)
        areas = [
            t.chart_area(preparation, code, injections=10)
            for code in ("forehead", "cheek-left", "cheek-right", "neck")
        ]
        services.session_chart(
            caller=t.caller(), session=session, chart=services.ChartIn(areas=areas), now=moment
        )
        sign(t, session, now=moment)
    t.prepare()
    return t, t.check_in()


@pytest.mark.parametrize("history", [0, 3])
def test_opening_and_saving_a_chart_runs_a_fixed_number_of_queries(db: None, history: int) -> None:
    t, session = _grow(history)
    client = client_for(t.practitioner)
    client.get(f"/treatments/sessions/{session.pk}/chart/")  # warm the session's caches
    with CaptureQueriesContext(connection) as page:
        assert client.get(f"/treatments/sessions/{session.pk}/chart/").status_code == 200
    with CaptureQueriesContext(connection) as api:
        assert client.get(f"/api/v1/sessions/{session.pk}").status_code == 200
    preparation = services.chartable_preparations(session)[0]
    body = {
        "areas": [
            {
                "area": code,
                "technique": "nappage",
                "depth_mm": "1.5",
                "points": [centre(t.area(code))] * 5,
                "injections": 20,
                "volume_per_point_ml": "0.02",
                "preparation_id": preparation.pk,
            }
            for code in ("forehead", "cheek-left", "cheek-right")
        ]
    }
    with CaptureQueriesContext(connection) as save:
        assert put(client, f"/api/v1/sessions/{session.pk}/chart", body).status_code == 200
    with CaptureQueriesContext(connection) as plan:
        assert client.get(f"/treatments/plans/{t.plan.pk}/").status_code == 200
    assert (len(page), len(api), len(save), len(plan)) == (
        CHART_PAGE_QUERIES,
        CHART_API_QUERIES,
        CHART_SAVE_QUERIES,
        PLAN_PAGE_QUERIES,
    )
