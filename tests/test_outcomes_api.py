"""The outcomes API (issue 9, Build 6): the scale catalogue, assessments, photo upload and download, progress,
photo consent, settings and the report — with 422 naming the field and nothing written on bad input."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from PIL import Image
from pypdf import PdfReader
from pytest_django.fixtures import Settings

from mesoclinic.outcomes.models import Assessment, Measurement, OutcomeSettings, Photo
from mesoclinic.treatments.models import TreatmentPlan
from tests.conftest import client_for
from tests.outcomes_support import GPS_IFD, jpeg, outcome_treat, signed_sessions, stored_files, today

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings: Settings, tmp_path: Path) -> Path:
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    return root


def post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def put(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.put(url, data=json.dumps(body), content_type="application/json")


def _fields(response: Any) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


def test_catalogue_lists_every_scale_with_its_range_version_and_loinc() -> None:
    t = outcome_treat()
    body = client_for(t.practitioner).get("/api/v1/outcomes/catalogue").json()
    scales = {scale["code"]: scale for scale in body["scales"]}
    assert scales["waist-circumference"]["loinc"] == "8280-0" and scales["waist-circumference"]["landmark"]
    assert scales["gais"]["at_baseline"] is False and len(scales["gais"]["grades"]) == 5
    assert len(scales["hexsel-css"]["items"]) == 5
    assert scales["bmi"]["derived"] and scales["bmi"]["loinc"] == "39156-5"
    assert body["views_by_indication"]["localized-fat"][0] == "abdomen-front"
    assert Client().get("/api/v1/outcomes/catalogue").status_code == 401


def test_record_read_and_progress_through_the_api() -> None:
    t = outcome_treat()
    client = client_for(t.practitioner)
    baseline = post(
        client,
        "/api/v1/outcomes/assessments",
        {
            "plan_id": t.plan.pk,
            "kind": "baseline",
            "taken_on": (today(t) - timedelta(days=30)).isoformat(),
            "measurements": [
                {"code": "weight", "value": "78.4"},
                {"code": "height", "value": "165"},
                {
                    "code": "waist-circumference",
                    "value": "88",
                    "landmark": {"fixed_point": "umbilicus", "direction": "at", "distance_cm": "0"},
                },
                {"code": "pain-nrs", "value": 2, "rater": "patient"},
            ],
            "note": "Fasting, morning.",
        },
    )
    assert baseline.status_code == 201, baseline.content
    body = baseline.json()
    assert body["kind"] == "baseline" and body["after_sessions"] == 0 and body["note"] == "Fasting, morning."
    by_code = {row["code"]: row for row in body["measurements"]}
    assert by_code["bmi"]["value"] == "28.80" and by_code["bmi"]["derived"]
    landmark = by_code["waist-circumference"]["landmark"]
    assert landmark["label"] == "at the navel"
    session = signed_sessions(t, 1)[0]
    second = post(
        client,
        "/api/v1/outcomes/assessments",
        {
            "plan_id": t.plan.pk,
            "kind": "session",
            "session_id": session.pk,
            "measurements": [{"code": "waist-circumference", "value": "85.5", "landmark_id": landmark["id"]}],
        },
    )
    assert second.status_code == 201
    listed = client.get(f"/api/v1/outcomes/assessments?plan_id={t.plan.pk}").json()
    assert [row["kind"] for row in listed] == ["baseline", "session"]
    progress = client.get(f"/api/v1/outcomes/progress/{t.plan.pk}").json()
    waist = next(series for series in progress["series"] if series["code"] == "waist-circumference")
    assert waist["change"]["delta"] == "-2.50" and waist["change"]["verdict"] == "better"
    assert waist["loinc"] == "8280-0" and waist["chart_url"].endswith(".svg")
    assert progress["status"] == "responder" and progress["rule_code"] == "localized-fat"
    assert progress["improved_on"] == session.session_date.isoformat()  # intervals may taper now
    assert [a["label"] for a in progress["alternatives"]][0] == "Injection lipolysis"


@pytest.mark.parametrize(
    ("measurements", "field"),
    [
        ([{"code": "waist-circumference", "value": "-2"}], "measurements.0.value"),
        ([{"code": "weight", "value": "0"}], "measurements.0.value"),
        ([{"code": "pain-nrs", "value": "12"}], "measurements.0.value"),
        ([{"code": "weight", "value": "NaN"}], "measurements.0.value"),
        ([{"code": "weight", "value": "abc"}], "measurements.0.value"),
        ([{"code": "weight", "value": "70", "extra": 1}], "measurements.0.extra"),
        ([{"code": "gais", "value": 3}], "measurements.0.code"),
        (
            [
                {
                    "code": "waist-circumference",
                    "value": "80",
                    "landmark": {"fixed_point": "umbilicus", "direction": "above", "distance_cm": "0"},
                }
            ],
            "measurements.0.landmark.distance_cm",
        ),
    ],
)
def test_bad_measurements_are_422_naming_the_field_and_nothing_is_written(
    measurements: list[dict[str, Any]], field: str
) -> None:
    t = outcome_treat()
    response = post(
        client_for(t.practitioner),
        "/api/v1/outcomes/assessments",
        {"plan_id": t.plan.pk, "kind": "baseline", "measurements": measurements},
    )
    assert response.status_code == 422
    assert field in _fields(response)
    assert Assessment.objects.count() == 0 and Measurement.objects.count() == 0


@pytest.mark.parametrize(
    "payload",
    ["", "[]", "null", '{"plan_id": "x", "kind": "baseline"}', '{"plan_id": 1, "kind": "later"}', "{"],
)
def test_wrong_shapes_are_4xx_never_5xx(payload: str) -> None:
    t = outcome_treat()
    response = client_for(t.practitioner).post(
        "/api/v1/outcomes/assessments", data=payload, content_type="application/json"
    )
    assert 400 <= response.status_code < 500


def test_photo_upload_and_download_strip_gps(media: Path) -> None:
    t = outcome_treat()
    client = client_for(t.practitioner)
    baseline = post(client, "/api/v1/outcomes/assessments", {"plan_id": t.plan.pk, "kind": "baseline"}).json()
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post(
        f"/api/v1/outcomes/assessments/{baseline['id']}/photos",
        {
            "view": "abdomen-left-45",
            "image": SimpleUploadedFile("IMG_7.jpg", jpeg(), content_type="image/jpeg"),
        },
    )
    assert response.status_code == 201, response.content
    photo = response.json()
    assert photo["view"] == "abdomen-left-45" and photo["content_type"] == "image/jpeg"
    download = client.get(photo["url"])
    assert download.status_code == 200 and "no-store" in download["Cache-Control"]
    served = Image.open(io.BytesIO(download.content))
    assert not served.getexif() and not served.getexif().get_ifd(GPS_IFD)
    assert client.get(photo["thumbnail_url"]).status_code == 200
    described = client.get(f"/api/v1/outcomes/photos/{photo['id']}").json()
    assert described["sha256"] == photo["sha256"]
    bad = client.post(
        f"/api/v1/outcomes/assessments/{baseline['id']}/photos",
        {"view": "abdomen-front", "image": SimpleUploadedFile("x.jpg", b"<html>not a photo</html>")},
    )
    assert bad.status_code == 422 and _fields(bad) == {"image"}
    wrong_view = client.post(
        f"/api/v1/outcomes/assessments/{baseline['id']}/photos",
        {"view": "scalp-top", "image": SimpleUploadedFile("y.jpg", jpeg())},
    )
    assert wrong_view.status_code == 422 and _fields(wrong_view) == {"view"}
    assert Photo.objects.count() == 1 and len(stored_files(media)) == 2


def test_consent_settings_and_report() -> None:
    t = outcome_treat()
    from mesoclinic.accounts.models import Role
    from tests.factories import staff

    client = client_for(t.practitioner)
    baseline = post(
        client,
        "/api/v1/outcomes/assessments",
        {"plan_id": t.plan.pk, "kind": "baseline", "measurements": [{"code": "weight", "value": "70"}]},
    ).json()
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.post(
        f"/api/v1/outcomes/assessments/{baseline['id']}/photos",
        {"view": "abdomen-front", "image": SimpleUploadedFile("a.jpg", jpeg())},
    )
    consent = put(client, f"/api/v1/outcomes/photo-consent/{t.plan.pk}", {"given": True})
    assert consent.status_code == 200 and consent.json()["given"] is True
    assert put(client, f"/api/v1/outcomes/photo-consent/{t.plan.pk}", {"given": "yes"}).status_code == 422
    pdf = client.get(f"/api/v1/outcomes/progress/{t.plan.pk}/report.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(pdf.content))
    assert "Progress report" in reader.pages[0].extract_text()
    assert sum(len(page.images) for page in reader.pages) >= 1
    admin = staff(t.clinic, Role.CLINIC_ADMIN)
    settings_client = client_for(admin)
    assert settings_client.get("/api/v1/outcomes/settings").json() == {
        "clinic": t.clinic.pk,
        "gais_reversed": False,
        "record_improvement": True,
    }
    changed = put(
        settings_client, "/api/v1/outcomes/settings", {"gais_reversed": True, "record_improvement": True}
    )
    assert changed.status_code == 200 and OutcomeSettings.objects.get(clinic=t.clinic).gais_reversed
    assert (
        put(
            client, "/api/v1/outcomes/settings", {"gais_reversed": True, "record_improvement": True}
        ).status_code
        == 403
    )
    assert settings_client.get(f"/api/v1/outcomes/progress/{t.plan.pk}").status_code == 403
    assert TreatmentPlan.objects.get(pk=t.plan.pk).improved_on is None
