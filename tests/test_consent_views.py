"""The consent pages: the patient page's panel (loaded by htmx: the record's query count stays the same), the
signing page (canvas script, strict CSP), signing at the desk, countersigning, withdrawal in the portal, the
staff's library and settings pages (issue 6)."""

from __future__ import annotations

import base64
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mesoclinic.accounts.models import Role, User
from mesoclinic.audit.models import Action, AuditEvent
from mesoclinic.consent.models import Article, Consent, ConsentTemplate, SessionPrice
from mesoclinic.consent.signature import sample_signature
from mesoclinic.treatments import services as treatments
from mesoclinic.treatments.models import Protocol
from tests.conftest import client_for
from tests.consent_support import ensure_consent_seed, ensure_gate_hook, sign_consent
from tests.factories import UserFactory, staff
from tests.test_consent_rules import png
from tests.treatments_support import Treat, treat

pytestmark = pytest.mark.django_db

# The patient page's queries: the same with no consent and with consents on several plans (the consent panel
# loads by htmx); the panel itself is the same for one plan and for three.
PANEL_QUERIES = 16


@pytest.fixture(autouse=True)
def _hook() -> None:
    ensure_consent_seed()
    ensure_gate_hook()


@pytest.fixture
def t(db: None) -> Treat:
    return treat(consented=False)


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, name
    return match.group(1)


def assert_strict(html: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert " style=" not in html and "onclick" not in html and "javascript:" not in html


def another_plan(t: Treat, areas: list[str]) -> None:
    treatments.plan_create(
        caller=t.caller(),
        patient=t.patient,
        protocol=Protocol.objects.get(clinic__isnull=True, code="facial-rejuvenation"),
        data=treatments.PlanIn(planned_sessions=4, areas=areas, formula_ids=[t.formulary.formula.pk]),
    )


def test_the_patient_page_loads_the_panel_by_htmx_and_keeps_its_query_count(t: Treat) -> None:
    client = client_for(t.practitioner)
    url = f"/patients/{t.patient.pk}/"
    client.get(url)
    with CaptureQueriesContext(connection) as before:
        page = client.get(url)
    assert page.status_code == 200
    assert f'hx-get="/consent/patients/{t.patient.pk}/panel/"' in page.content.decode()
    sign_consent(t.plan)
    another_plan(t, ["forehead"])
    another_plan(t, ["neck"])
    with CaptureQueriesContext(connection) as after:
        client.get(url)
    assert len(after.captured_queries) == len(before.captured_queries)
    # The clinic admin reads no consent: no panel is loaded for them.
    admin = client_for(staff(t.clinic, Role.CLINIC_ADMIN))
    assert "consent-panel" not in admin.get(url).content.decode()


def test_the_panel_is_bounded_and_audited(t: Treat) -> None:
    client = client_for(t.desk)
    url = f"/consent/patients/{t.patient.pk}/panel/"
    client.get(url, HTTP_HX_REQUEST="true")
    with CaptureQueriesContext(connection) as one:
        fragment = client.get(url, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and "<html" not in fragment.content.decode()
    assert "No signed consent covers this plan" in fragment.content.decode()
    sign_consent(t.plan)
    another_plan(t, ["forehead"])
    another_plan(t, ["neck"])
    with CaptureQueriesContext(connection) as three:
        fragment = client.get(url, HTTP_HX_REQUEST="true")
    assert len(one.captured_queries) == len(three.captured_queries) == PANEL_QUERIES
    html = fragment.content.decode()
    assert html.count('class="consent-plan"') == 3 and 'data-state="awaiting-countersignature"' in html
    assert AuditEvent.objects.filter(action=Action.CONSENT_READ, patient_id=t.patient.pk).count() == 3
    full = client.get(url)
    assert "<html" in full.content.decode()


def test_signing_on_the_desk_tablet(t: Treat) -> None:
    client = client_for(t.desk)
    page = client.get(f"/consent/plans/{t.plan.pk}/sign/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<canvas id="signature-pad"' in html and re.search(
        r"/static/consent/signature\.[0-9a-f]+\.js", html
    )
    assert "Hand the tablet to the patient." in html and "Hyaluronic acid" in html
    assert_strict(html)
    assert "script-src 'self'" in page["Content-Security-Policy"]
    form = {
        "patient_id": hidden(html, "patient_id"),
        "template_version_id": hidden(html, "template_version_id"),
        "text_sha256": hidden(html, "text_sha256"),
        "language": hidden(html, "language"),
        "typed_name": t.patient.full_name,
        "signature": "",
    }
    empty = client.post(f"/consent/plans/{t.plan.pk}/sign/", form)
    assert empty.status_code == 422 and "Draw your signature in the box." in empty.content.decode()
    blank = client.post(
        f"/consent/plans/{t.plan.pk}/sign/",
        {**form, "signature": "data:image/png;base64," + base64.b64encode(png(ink=False)).decode()},
    )
    assert blank.status_code == 422 and "Draw your signature" in blank.content.decode()
    wrong = client.post(
        f"/consent/plans/{t.plan.pk}/sign/", {**form, "signature": "x", "typed_name": "Nobody"}
    )
    assert wrong.status_code == 422 and 'id="typed-name-error"' in wrong.content.decode()
    assert not Consent.objects.exists()
    drawn = "data:image/png;base64," + base64.b64encode(sample_signature(9)).decode()
    done = client.post(f"/consent/plans/{t.plan.pk}/sign/", {**form, "signature": drawn})
    assert done.status_code == 302
    consent = Consent.objects.get()
    assert done["Location"] == f"/consent/consents/{consent.pk}/"
    assert (consent.signed_via, consent.recorded_by_id) == ("desk", t.desk.pk)
    detail = client.get(done["Location"])
    assert detail.status_code == 200 and 'src="data:image/png;base64,' in detail.content.decode()
    assert 'id="countersign"' not in detail.content.decode()  # the desk does not countersign
    assert client.post(f"/consent/consents/{consent.pk}/countersign/").status_code == 403
    practitioner = client_for(t.practitioner).get(done["Location"]).content.decode()
    assert 'id="countersign"' in practitioner
    again = client.get(f"/consent/plans/{t.plan.pk}/sign/").content.decode()
    assert 'id="sign-unavailable"' in again and "<canvas" not in again


def test_an_out_of_date_page_shows_the_new_version_to_sign(t: Treat) -> None:
    client = client_for(t.desk)
    html = client.get(f"/consent/plans/{t.plan.pk}/sign/").content.decode()
    seeded = ConsentTemplate.objects.get(clinic__isnull=True, jurisdiction="FR", language="en")
    director = client_for(t.director)
    edit = director.get(f"/consent/templates/{seeded.pk}/edit/")
    assert edit.status_code == 200
    fields = {
        name: hidden(edit.content.decode(), name)
        for name in ("title", "source")
        if f'name="{name}"' in edit.content.decode()
    }
    version = seeded.versions.get()
    saved = director.post(
        f"/consent/templates/{seeded.pk}/edit/",
        {
            **fields,
            "indication": "",
            "jurisdiction": "FR",
            "title": version.title,
            "procedure": version.procedure + "\n\nNew paragraph for the clinic.",
            "risks": version.risks,
            "evidence": version.evidence,
            "declaration": version.declaration,
            "source": "",
        },
    )
    assert saved.status_code == 302
    own = ConsentTemplate.objects.get(clinic=t.clinic)
    answer = client.post(
        f"/consent/plans/{t.plan.pk}/sign/",
        {
            "patient_id": hidden(html, "patient_id"),
            "template_version_id": hidden(html, "template_version_id"),
            "text_sha256": hidden(html, "text_sha256"),
            "language": "en",
            "typed_name": t.patient.full_name,
            "signature": "data:image/png;base64," + base64.b64encode(sample_signature(1)).decode(),
        },
    )
    assert answer.status_code == 422
    page = answer.content.decode()
    assert "out of date" in page and "New paragraph for the clinic." in page
    assert hidden(page, "template_version_id") == str(own.versions.get().pk)
    assert not Consent.objects.exists()


def test_the_portal_lists_the_plan_to_sign_and_withdraws(t: Treat) -> None:
    user = UserFactory.create()
    t.patient.user = user
    t.patient.save(update_fields=["user"])
    client = client_for(user, verified=False)
    page = client.get("/consent/portal/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'href="/consent/plans/{t.plan.pk}/sign/"' in html and "What the evidence says" in html
    article = client.get(
        "/consent/portal/education/evidence/?indication=rejuvenation", HTTP_ACCEPT_LANGUAGE="fr"
    )
    assert (
        article.status_code == 200
        and "Ce que disent les études sur la mésothérapie pour la peau" in article.content.decode()
    )
    assert client.get("/consent/portal/education/nonsense/").status_code == 404
    consent = sign_consent(t.plan, user=User.objects.get(pk=user.pk))
    detail = client.get(f"/consent/consents/{consent.pk}/").content.decode()
    assert "Withdraw my consent" in detail
    assert client.post(f"/consent/consents/{consent.pk}/withdraw/", {"reason": "x" * 1001}).status_code == 302
    assert Consent.objects.get().withdrawn_at is None
    assert client.post(f"/consent/consents/{consent.pk}/withdraw/", {"reason": ""}).status_code == 302
    assert Consent.objects.get().withdrawn_by_id == user.pk
    assert 'data-state="withdrawn"' in client.get("/consent/portal/").content.decode()
    assert client.get(f"/consent/consents/{consent.pk}/consent.pdf").status_code == 409


def test_the_staff_library_templates_and_settings_pages(t: Treat) -> None:
    admin = client_for(staff(t.clinic, Role.CLINIC_ADMIN))
    home = admin.get("/consent/")
    assert home.status_code == 200 and 'id="consent-templates"' in home.content.decode()
    assert_strict(home.content.decode())
    article = Article.objects.get(clinic__isnull=True, topic="costs", indication="", language="en")
    assert (
        "the price on your written quote" in admin.get(f"/consent/education/{article.pk}/").content.decode()
    )
    bad = admin.post("/consent/settings/", {"validity_months": "0", "price_default": "-1"})
    assert bad.status_code == 422 and not SessionPrice.objects.exists()
    saved = admin.post(
        "/consent/settings/", {"validity_months": "18", "price_default": "300", "price_cellulite": "420.50"}
    )
    assert saved.status_code == 302
    assert dict(SessionPrice.objects.values_list("indication", "price_per_session")) == {
        "": 300,
        "cellulite": 420.5,
    }
    shown = admin.get(f"/consent/education/{article.pk}/").content.decode()
    assert "300.00 EUR" in shown
    edit = admin.post(
        f"/consent/education/{article.pk}/edit/",
        {"indication": "cellulite", "title": "Costs", "body": "{price_per_session}."},
    )
    assert edit.status_code == 302
    own = Article.objects.get(clinic=t.clinic)
    assert own.indication == "cellulite" and "420.50 EUR." in admin.get(edit["Location"]).content.decode()
    desk = client_for(t.desk)
    assert desk.get("/consent/settings/").status_code == 403
    assert desk.get(f"/consent/education/{article.pk}/edit/").status_code == 403
    assert desk.get("/consent/").status_code == 200
    assert client_for(staff(t.clinic, Role.RESEARCHER)).get("/consent/").status_code == 403


def test_odd_requests_get_a_clear_answer_never_an_error(t: Treat) -> None:
    client = client_for(t.desk)
    assert client.get(f"/consent/plans/{t.plan.pk}/sign/?language=de").status_code == 200
    nul = client.post(f"/consent/plans/{t.plan.pk}/sign/", {"typed_name": "a\x00b", "signature": "x"})
    assert nul.status_code == 422
    assert client.get(f"/consent/plans/{2**70}/sign/").status_code == 404
    answer = client.post(
        f"/api/v1/consent/plan/{t.plan.pk}/signatures",
        data={
            "patient_id": t.patient.pk,
            "template_version_id": 1,
            "text_sha256": "0" * 64,
            "typed_name": "Jo\x00",
            "signature": "",
        },
        content_type="application/json",
    )
    assert answer.status_code == 422
    # No template speaks for the plan (the clinic removed every one in its patients' languages).
    for pk in ConsentTemplate.objects.values_list("pk", flat=True):
        ConsentTemplate.objects.filter(pk=pk).update(language=f"x{pk}")
    page = client.get(f"/consent/plans/{t.plan.pk}/sign/")
    assert page.status_code == 409 and "no consent template" in page.content.decode()
    api = client.get(f"/api/v1/consent/plan/{t.plan.pk}/document")
    assert api.status_code == 422 and api.json()["errors"][0]["field"] == "plan"
    assert not Consent.objects.exists()
