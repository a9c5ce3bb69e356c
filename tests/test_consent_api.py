"""The consent API over HTTP (the test client): render, sign, countersign, withdraw and the PDF; templates,
the education library and the clinic's settings; bad input answers 422 naming the field and writes nothing
(issue 6)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from django.test import Client
from pypdf import PdfReader

from mesoclinic.accounts.models import Role, User
from mesoclinic.audit.models import Action, AuditEvent
from mesoclinic.consent.models import (
    Article,
    ArticleVersion,
    Consent,
    ConsentSettings,
    ConsentTemplate,
    ConsentTemplateVersion,
    SessionPrice,
)
from mesoclinic.consent.signature import sample_signature
from tests.conftest import client_for
from tests.consent_support import ensure_consent_seed, ensure_gate_hook, set_price
from tests.factories import UserFactory, staff
from tests.test_consent_rules import png
from tests.treatments_support import Treat, treat

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _hook() -> None:
    ensure_consent_seed()
    ensure_gate_hook()


@pytest.fixture
def t(db: None) -> Treat:
    return treat(consented=False)


def post(client: Client, url: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def put(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.put(url, data=json.dumps(body), content_type="application/json")


def fields(response: Any) -> set[str]:
    return {error["field"] for error in response.json().get("errors", [])}


def data_url(raw: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def portal(t: Treat) -> tuple[User, Client]:
    user = UserFactory.create()
    t.patient.user = user
    t.patient.save(update_fields=["user"])
    return user, client_for(user, verified=False)


def test_the_patient_reads_and_signs_over_the_api_and_the_practitioner_countersigns(t: Treat) -> None:
    set_price(t.plan, "350.00")
    _user, patient = portal(t)
    document = patient.get(f"/api/v1/consent/plan/{t.plan.pk}/document")
    assert document.status_code == 200, document.content
    shown = document.json()
    assert shown["can_sign"] is True and shown["refusals"] == [] and "Hyaluronic acid" in shown["text"]
    body = {
        "patient_id": t.patient.pk,
        "template_version_id": shown["template_version_id"],
        "text_sha256": shown["text_sha256"],
        "typed_name": t.patient.full_name,
        "signature": data_url(sample_signature(4)),
    }
    signed = post(patient, f"/api/v1/consent/plan/{t.plan.pk}/signatures", body)
    assert signed.status_code == 201, signed.content
    consent = signed.json()
    assert consent["state"] == "awaiting-countersignature" and consent["signed_via"] == "portal"
    assert consent["text_sha256"] == shown["text_sha256"] and consent["pdf_sha256"] is None
    again = post(patient, f"/api/v1/consent/plan/{t.plan.pk}/signatures", body)
    assert again.status_code == 422 and fields(again) == {"plan"}

    practitioner = client_for(t.practitioner)
    pending_pdf = practitioner.get(f"/api/v1/consent/consents/{consent['id']}/pdf")
    assert pending_pdf.status_code == 422 and "countersigns" in pending_pdf.json()["errors"][0]["message"]
    done = post(practitioner, f"/api/v1/consent/consents/{consent['id']}/countersign")
    assert done.status_code == 200, done.content
    assert done.json()["state"] == "valid" and len(done.json()["pdf_sha256"]) == 64
    twice = post(practitioner, f"/api/v1/consent/consents/{consent['id']}/countersign")
    assert twice.status_code == 422 and "already" in twice.json()["errors"][0]["message"]

    for client in (practitioner, patient):
        pdf = client.get(f"/api/v1/consent/consents/{consent['id']}/pdf")
        assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
        assert pdf["Content-Disposition"].startswith("attachment;") and "no-store" in pdf["Cache-Control"]
        text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages).split())
        assert "Vitamin C" in text and "2008 study of 20 women" in text and "infection" in text
    page = practitioner.get(f"/consent/consents/{consent['id']}/consent.pdf")
    assert page.status_code == 200 and page["Content-Disposition"].startswith("attachment;")
    assert "no-store" in page["Cache-Control"]
    assert AuditEvent.objects.filter(action=Action.CONSENT_PRINT, patient_id=t.patient.pk).count() == 3

    status = practitioner.get(f"/api/v1/consent/plan/{t.plan.pk}").json()
    assert status["valid"] is True and status["gate"][0]["code"] == "consent-valid"
    listing = practitioner.get(f"/api/v1/patients/{t.patient.pk}/consents").json()
    assert [row["plan"] for row in listing] == [t.plan.pk] and listing[0]["consents"][0]["id"] == consent[
        "id"
    ]
    # Withdrawn by the patient: the gate blocks again.
    withdrawn = post(patient, f"/api/v1/consent/consents/{consent['id']}/withdraw", {"reason": "Not now."})
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    gate = practitioner.get(f"/api/v1/plans/{t.plan.pk}/gate").json()
    assert any(f["code"] == "no-consent" and f["severity"] == "block" for f in gate["findings"])
    assert gate["can_start"] is False


def test_bad_signatures_answer_422_naming_the_field_and_write_nothing(t: Treat) -> None:
    client = client_for(t.desk)
    shown = client.get(f"/api/v1/consent/plan/{t.plan.pk}/document").json()
    good = {
        "patient_id": t.patient.pk,
        "template_version_id": shown["template_version_id"],
        "text_sha256": shown["text_sha256"],
        "typed_name": t.patient.full_name,
        "signature": data_url(sample_signature(2)),
    }
    other = staff(t.clinic, Role.FRONT_DESK)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"signature": ""}, "signature"),
        ({"signature": data_url(png(ink=False))}, "signature"),
        ({"signature": "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="}, "signature"),
        ({"signature": 12}, "signature"),
        ({"typed_name": "   "}, "typed_name"),
        ({"patient_id": t.patient.pk + 1000}, "patient_id"),
        ({"patient_id": "1"}, "patient_id"),
        ({"template_version_id": shown["template_version_id"] + 1000}, "template_version_id"),
        ({"text_sha256": "not-a-hash"}, "text_sha256"),
        ({"text_sha256": "0" * 64}, "text_sha256"),
        ({"language": "de"}, "language"),
        ({"surprise": True}, "surprise"),
    ]
    for overrides, field in cases:
        answer = post(client, f"/api/v1/consent/plan/{t.plan.pk}/signatures", {**good, **overrides})
        assert answer.status_code == 422, (overrides, answer.content)
        assert field in fields(answer), (overrides, answer.json())
    missing = post(client, f"/api/v1/consent/plan/{t.plan.pk}/signatures", {})
    assert missing.status_code == 422 and {"patient_id", "signature", "typed_name"} <= fields(missing)
    assert not Consent.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.CONSENT_SIGN).exists()
    assert other.pk  # a second desk account changes nothing: the desk presents, the patient signs
    ok = post(client, f"/api/v1/consent/plan/{t.plan.pk}/signatures", good)
    assert ok.status_code == 201 and ok.json()["signed_via"] == "desk"


def test_templates_articles_and_settings_over_the_api(t: Treat) -> None:
    director = client_for(t.director)
    templates = director.get("/api/v1/consent/templates").json()
    assert {(row["jurisdiction"], row["language"]) for row in templates} >= {
        ("FR", "en"),
        ("US", "fr"),
        ("", "en"),
    }
    fr_en = next(row for row in templates if row["jurisdiction"] == "FR" and row["language"] == "en")
    body = {
        "title": "Consent",
        "procedure": "Our procedure.",
        "risks": "- bruising",
        "evidence": "Weak.",
        "declaration": "I consent.",
        "indication": "rejuvenation",
    }
    made = post(director, f"/api/v1/consent/templates/{fr_en['id']}/versions", body)
    assert made.status_code == 201, made.content
    own = made.json()
    assert own["clinic_owned"] and own["indication"] == "rejuvenation" and own["copied_from"] == fr_en["id"]
    assert own["version"]["number"] == 1 and own["jurisdiction"] == "FR"
    shown = client_for(t.practitioner).get(f"/api/v1/consent/plan/{t.plan.pk}/document").json()
    assert shown["template_version_id"] == own["version"]["id"] and "Our procedure." in shown["text"]
    for bad, field in (
        ({**body, "procedure": ""}, "procedure"),
        ({**body, "indication": "tattoo"}, "indication"),
        ({**body, "jurisdiction": "France"}, "jurisdiction"),
        ({**body, "title": "x" * 201}, "title"),
    ):
        answer = post(director, f"/api/v1/consent/templates/{fr_en['id']}/versions", bad)
        assert answer.status_code == 422 and field in fields(answer), (bad, answer.json())
    assert ConsentTemplateVersion.objects.filter(template__clinic=t.clinic).count() == 1
    desk = client_for(t.desk)
    assert post(desk, f"/api/v1/consent/templates/{fr_en['id']}/versions", body).status_code == 403

    library = desk.get("/api/v1/education/articles?language=fr&indication=hair-loss").json()
    assert [row["topic"] for row in library][:3] == ["what-is", "what-to-expect", "sessions"]
    assert all(row["language"] == "fr" for row in library)
    assert next(row for row in library if row["topic"] == "evidence")["indication"] == "hair-loss"
    assert desk.get("/api/v1/education/articles?indication=tattoo").status_code == 422
    seeded = Article.objects.get(clinic__isnull=True, topic="costs", language="en", indication="")
    revised = post(
        client_for(t.practitioner),
        f"/api/v1/education/articles/{seeded.pk}/versions",
        {"title": "Costs", "body": "A session costs {price_per_session} at {clinic_name}."},
    )
    assert revised.status_code == 201 and revised.json()["clinic_owned"]
    assert "the price on your written quote" in revised.json()["text"]
    assert (
        post(
            desk, f"/api/v1/education/articles/{seeded.pk}/versions", {"title": "x", "body": "y"}
        ).status_code
        == 403
    )
    assert ArticleVersion.objects.filter(article__clinic=t.clinic).count() == 1

    admin = client_for(staff(t.clinic, Role.CLINIC_ADMIN))
    assert admin.get("/api/v1/consent/settings").json() == {
        "clinic_id": t.clinic.pk,
        "currency": "EUR",
        "validity_months": 12,
        "prices": [],
    }
    bad_terms: list[tuple[dict[str, Any], str]] = [
        ({"validity_months": 0, "prices": []}, "validity_months"),
        (
            {"validity_months": 12, "prices": [{"indication": "", "price_per_session": "-3"}]},
            "prices.0.price_per_session",
        ),
        (
            {"validity_months": 12, "prices": [{"indication": "", "price_per_session": "1.234"}]},
            "prices.0.price_per_session",
        ),
        (
            {"validity_months": 12, "prices": [{"indication": "tattoo", "price_per_session": "100"}]},
            "prices.tattoo",
        ),
        ({"validity_months": 12, "prices": [{"indication": "", "price_per_session": "1"}] * 2}, "prices"),
    ]
    for bad, field in bad_terms:
        answer = put(admin, "/api/v1/consent/settings", bad)
        assert answer.status_code == 422 and field in fields(answer), (bad, answer.json())
    assert not SessionPrice.objects.exists() and not ConsentSettings.objects.exists()
    saved = put(
        admin,
        "/api/v1/consent/settings",
        {"validity_months": 9, "prices": [{"indication": "", "price_per_session": "320.00"}]},
    )
    assert saved.status_code == 200 and saved.json()["prices"] == [
        {"indication": "", "price_per_session": "320.00"}
    ]
    assert put(desk, "/api/v1/consent/settings", {"validity_months": 9}).status_code == 403
    assert ConsentTemplate.objects.filter(clinic=t.clinic).count() == 1


def test_the_openapi_lists_the_consent_endpoints(t: Treat) -> None:
    paths = client_for(t.practitioner).get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/api/v1/consent/plan/{plan_id}/document",
        "/api/v1/consent/plan/{plan_id}/signatures",
        "/api/v1/consent/consents/{consent_id}/countersign",
        "/api/v1/consent/consents/{consent_id}/withdraw",
        "/api/v1/consent/consents/{consent_id}/pdf",
        "/api/v1/consent/templates",
        "/api/v1/education/articles",
        "/api/v1/consent/settings",
    ):
        assert path in paths, path
    # The treatments matrix counts every path with "/plans" in it: the consent paths keep out of its way.
    assert not [path for path in paths if "/consent" in path and "/plans" in path]
