"""The intake, screening and review API: shapes, bad input, brand names, formulas, reviews, audit, and the
authorisation matrix of every new operation (role × {own record, other patient, other clinic})."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.http import Http404
from django.test import Client
from django.utils import timezone

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role
from mesoclinic.audit.models import Action, AuditEvent
from mesoclinic.clinics.models import Clinic
from mesoclinic.patients.models import Patient
from mesoclinic.screening import services
from mesoclinic.screening.models import Intake, Medicine, MedicineName, Review
from mesoclinic.screening.rules import RULES_VERSION, CautionFacts, FormulaFacts, IngredientFacts
from tests.conftest import ALL_ROLES, World, client_for
from tests.factories import staff
from tests.screening_support import ensure_catalogues, submit

# The test clinics are in Paris: dates are checked against the clinic's own today.
TODAY = timezone.localdate(timezone=ZoneInfo("Europe/Paris"))


@pytest.fixture(autouse=True)
def _catalogues(db: None) -> None:
    ensure_catalogues()


def _put(client: Client, patient: Patient, body: object) -> Any:
    return client.put(
        f"/api/v1/patients/{patient.pk}/intake",
        data=body if isinstance(body, str) else json.dumps(body),
        content_type="application/json",
    )


def _sign(client: Client, patient: Patient, body: dict[str, object]) -> Any:
    return client.post(
        f"/api/v1/patients/{patient.pk}/screening/review",
        data=json.dumps(body),
        content_type="application/json",
    )


GOOD = {
    "pregnancy": "none",
    "conditions": ["autoimmune"],
    "medications": [
        {"name": "eLiQuIs 5 mg", "last_taken": (TODAY - timedelta(days=1)).isoformat()},
        {"name": "Zorblax", "last_taken": None},
    ],
    "allergies": ["soy"],
    "weight_stable": True,
    "goals": "Less fat under the chin",
    "previous_treatments": "Botox 2024",
}


# --- intake ---------------------------------------------------------------------------------------------


def test_put_intake_stores_a_new_version_each_time(world: World) -> None:
    client = client_for(world.users["front_desk"])
    first = _put(client, world.patient, GOOD)
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["version"] == 1
    assert body["submitted_as"] == "staff"
    assert body["medications"] == [
        {
            "name": "eLiQuIs 5 mg",
            "last_taken": (TODAY - timedelta(days=1)).isoformat(),
            "medicine": "apixaban",
            "classes": ["anticoagulant"],
        },
        {"name": "Zorblax", "last_taken": None, "medicine": None, "classes": []},
    ]
    assert {key: body[key] for key in ("pregnancy", "conditions", "allergies", "weight_stable", "goals")} == {
        key: GOOD[key] for key in ("pregnancy", "conditions", "allergies", "weight_stable", "goals")
    }
    second = _put(client, world.patient, {**GOOD, "pregnancy": "planning"})
    assert second.json()["version"] == 2
    assert list(Intake.objects.filter(patient=world.patient).values_list("version", "pregnancy")) == [
        (2, "planning"),
        (1, "none"),
    ]
    read = client.get(f"/api/v1/patients/{world.patient.pk}/intake")
    assert read.json()["version"] == 2


def test_the_patient_submits_their_own_intake(world: World) -> None:
    client = client_for(world.users["patient"])
    response = _put(client, world.own_patient, {"pregnancy": "none"})
    assert response.status_code == 200
    assert response.json()["submitted_as"] == "patient"
    assert response.json()["weight_stable"] is None


def test_intake_rows_are_immutable(world: World) -> None:
    intake = submit(world.patient, world.users["practitioner"])
    intake.goals = "changed"
    with pytest.raises(RuntimeError):
        intake.save()
    with pytest.raises(RuntimeError):
        intake.delete()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"conditions": ["autoimmune", "vampirism"]}, "conditions"),
        ({"conditions": "autoimmune"}, "conditions"),
        ({"conditions": [3]}, "conditions.0"),
        ({"medications": [{"name": "Advil", "last_taken": "2999-01-01"}]}, "medications.0.last_taken"),
        (
            {"medications": [{"name": "Advil", "last_taken": (TODAY + timedelta(days=2)).isoformat()}]},
            "medications.0.last_taken",
        ),
        ({"medications": [{"name": "Advil", "last_taken": "2026-02-30"}]}, "medications.0.last_taken"),
        ({"medications": [{"name": "Advil", "last_taken": 20260101}]}, "medications.0.last_taken"),
        ({"medications": [{"name": "Advil", "last_taken": "01/02/2026"}]}, "medications.0.last_taken"),
        ({"medications": [{"name": ""}]}, "medications.0.name"),
        ({"medications": [{"name": "Advil", "dose": "200"}]}, "medications.0.dose"),
        ({"medications": "Advil"}, "medications"),
        ({"weight_stable": "yes"}, "weight_stable"),
        ({"weight_stable": 1}, "weight_stable"),
        ({"pregnancy": "maybe"}, "pregnancy"),
        ({"pregnancy": None}, "pregnancy"),
        ({"allergies": [""]}, "allergies.0"),
        ({"allergies": "soy"}, "allergies"),
        ({"goals": 5}, "goals"),
        ({"goals": "x" * 2001}, "goals"),
        ({"smoker": True}, "smoker"),
    ],
)
def test_bad_intake_is_refused_with_the_field_named_and_nothing_stored(
    world: World, change: dict[str, object], field: str
) -> None:
    client = client_for(world.users["practitioner"])
    response = _put(client, world.patient, {**GOOD, **change})
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["detail"]
    assert field in [error["field"] for error in body["errors"]], body
    assert all(error["message"] for error in body["errors"])
    assert not Intake.objects.exists()


@pytest.mark.parametrize("payload", ["not json", "[]", "null", '{"pregnancy": "none"'])
def test_malformed_intake_is_4xx(world: World, payload: str) -> None:
    response = _put(client_for(world.users["practitioner"]), world.patient, payload)
    assert 400 <= response.status_code < 500
    assert not Intake.objects.exists()


# --- brand names and the catalogue ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "generic"),
    [
        ("Eliquis", "apixaban"),
        ("ELIQUIS", "apixaban"),
        ("xarelto 20mg", "rivaroxaban"),
        ("Coumadin", "warfarin"),
        ("jantoven", "warfarin"),
        ("Pradaxa", "dabigatran"),
        ("Plavix", "clopidogrel"),
        ("Brilinta", "ticagrelor"),
        ("ADVIL", "ibuprofen"),
        ("motrin", "ibuprofen"),
        ("Aleve", "naproxen"),
        ("Bufferin", "aspirin"),
        ("Bayer", "aspirin"),
        ("aspirin 81 mg", "aspirin"),
        ("baby aspirin", "aspirin"),
        ("Voltaren", "diclofenac"),
        ("Celebrex", "celecoxib"),
        ("Propecia", "finasteride"),
        ("Proscar", "finasteride"),
        ("Avodart", "dutasteride"),
        ("Accutane", "isotretinoin"),
        ("Roaccutane", "isotretinoin"),
        ("Absorica", "isotretinoin"),
        ("Methotrexate", "methotrexate"),
        ("prednisone", "prednisone"),
        ("Cyclosporine", "ciclosporin"),
        ("tacrolimus", "tacrolimus"),
        ("Tylenol", "paracetamol"),
    ],
)
def test_brand_and_generic_names_are_matched_case_insensitively(
    world: World, written: str, generic: str
) -> None:
    matches = services.medicine_matches(clinic_id=world.clinic.pk, names=[written])
    match = matches[written]
    assert match is not None
    assert match.generic_name == generic


def test_aspirin_is_an_nsaid_and_an_antiplatelet(world: World) -> None:
    match = services.medicine_matches(clinic_id=world.clinic.pk, names=["Bufferin"])["Bufferin"]
    assert match is not None
    assert match.classes == {"nsaid", "antiplatelet"}


def test_a_clinic_extends_the_catalogue_for_itself_only(world: World) -> None:
    local = Medicine.objects.create(clinic=world.clinic, generic_name="vorapaxar", classes=["antiplatelet"])
    MedicineName.objects.create(medicine=local, clinic=world.clinic, name="Zontivity", is_brand=True)
    # and a local brand for a global medicine
    MedicineName.objects.create(
        medicine=Medicine.objects.get(clinic=None, generic_name="apixaban"), clinic=world.clinic, name="Apixa"
    )
    mine = services.medicine_matches(clinic_id=world.clinic.pk, names=["zontivity", "APIXA"])
    theirs = services.medicine_matches(clinic_id=world.other_clinic.pk, names=["zontivity", "APIXA"])
    assert mine["zontivity"] is not None and mine["zontivity"].generic_name == "vorapaxar"
    assert mine["APIXA"] is not None and mine["APIXA"].generic_name == "apixaban"
    assert theirs == {"zontivity": None, "APIXA": None}


# --- screening ------------------------------------------------------------------------------------------


def _screening(client: Client, patient: Patient, **params: str | int) -> Any:
    return client.get(f"/api/v1/patients/{patient.pk}/screening", params)


def test_screening_shape_and_findings(world: World) -> None:
    submit(
        world.patient,
        world.users["practitioner"],
        medications=(("Eliquis", None), ("advil", date(2026, 5, 10)), ("Zorblax", None)),
    )
    response = _screening(client_for(world.users["practitioner"]), world.patient, on="2026-05-13")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"verdict", "findings", "intake_version", "rules_version"}
    assert body["verdict"] == "review"
    assert body["intake_version"] == 1
    assert body["rules_version"] == RULES_VERSION
    assert all(
        set(finding) == {"code", "severity", "rule", "message", "source"} for finding in body["findings"]
    )
    assert [(f["code"], f["severity"], f["rule"]) for f in body["findings"]] == [
        ("anticoagulant", "warn", "R-CAND-ANTICOAG"),
        ("nsaid-washout", "warn", "R-PRE-NSAID"),
        ("unknown-medicine", "warn", "R-CAND-ANTICOAG"),
    ]
    # exactly 7 days after the last dose the washout is over
    later = _screening(client_for(world.users["practitioner"]), world.patient, on="2026-05-17").json()
    assert "nsaid-washout" not in [finding["code"] for finding in later["findings"]]


def test_screening_defaults_to_today_in_the_clinics_time_zone(world: World) -> None:
    now = timezone.now()
    # A zone whose date differs from UTC's right now: east of UTC late in the UTC day, west early in it.
    zone = "Pacific/Kiritimati" if now.hour >= 10 else "Pacific/Pago_Pago"
    Clinic.objects.filter(pk=world.clinic.pk).update(time_zone=zone)
    local_today = now.astimezone(ZoneInfo(zone)).date()
    utc_today = now.date()
    assert local_today != utc_today
    # 18 on the clinic's date and not on UTC's, or the other way round.
    turning = local_today if local_today > utc_today else utc_today
    born = turning.replace(year=turning.year - 18) if (turning.month, turning.day) != (2, 29) else None
    if born is None:  # a 29 February today: take the next day's birthday instead
        born = date(turning.year - 18, 3, 1)
        turning = date(turning.year, 3, 1)
    Patient.objects.filter(pk=world.patient.pk).update(date_of_birth=born)
    submit(Patient.objects.get(pk=world.patient.pk), world.users["practitioner"])
    body = _screening(client_for(world.users["practitioner"]), world.patient).json()
    minor_on_clinic_date = local_today < turning
    assert ("age-under-18" in [finding["code"] for finding in body["findings"]]) == minor_on_clinic_date


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"on": "2026-13-01"}, "on"),
        ({"on": "20260101"}, "on"),
        ({"on": "1950-01-01"}, "on"),  # before the date of birth
        ({"on": "2026-05-01"}, "on"),  # before the last dose (2026-05-10)
        ({"formula": "abc"}, "formula"),
        ({"formula": "0"}, "formula"),
        ({"areas": "Abdomen!"}, "areas"),
    ],
)
def test_screening_bad_input_is_422_with_the_field(world: World, params: dict[str, str], field: str) -> None:
    submit(world.patient, world.users["practitioner"], medications=(("advil", date(2026, 5, 10)),))
    response = _screening(client_for(world.users["practitioner"]), world.patient, **params)
    assert response.status_code == 422, response.content
    assert field in [error["field"] for error in response.json()["errors"]]


def test_no_intake_yet_is_409(world: World) -> None:
    response = _screening(client_for(world.users["practitioner"]), world.patient)
    assert response.status_code == 409
    assert response.json()["detail"]


FORMULAS = {
    7: FormulaFacts(
        name="Lipo mix",
        ingredients=(
            IngredientFacts(
                code="phosphatidylcholine",
                name="Phosphatidylcholine",
                cautions=(CautionFacts("soy", "soy-derived (inference)", "literature: inference"),),
            ),
            IngredientFacts(code="deoxycholic-acid", name="Deoxycholic acid"),
        ),
        indications=frozenset({"localized-fat"}),
    ),
    8: FormulaFacts(
        name="Hair",
        ingredients=(IngredientFacts(code="finasteride", name="Finasteride", teratogen=True),),
        indications=frozenset({"hair-loss"}),
    ),
}


def fake_formula_provider(*, clinic: Clinic, formula_id: int) -> FormulaFacts:
    """What the formulary's hook does: a formula of that clinic, or Http404."""
    if clinic.name != "Clinique du Parc" or formula_id not in FORMULAS:
        raise Http404
    return FORMULAS[formula_id]


def test_a_planned_formula_adds_its_findings(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "FORMULARY_HOOK", ("tests.test_screening_api", "fake_formula_provider"))
    submit(world.patient, world.users["practitioner"], allergies=("Soya lecithin",), weight_stable=None)
    client = client_for(world.users["practitioner"])
    lipo = _screening(client, world.patient, formula=7, on="2026-06-01").json()
    assert [(f["code"], f["severity"]) for f in lipo["findings"]] == [
        ("unstable-weight", "warn"),
        ("allergy-caution", "warn"),
    ]
    hair = _screening(client, world.patient, formula=8, on="2026-06-01").json()
    assert [(f["code"], f["severity"]) for f in hair["findings"]] == [("teratogen", "warn")]
    unknown = _screening(client, world.patient, formula=9)
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [{"field": "formula", "message": "Unknown formula."}]


def test_without_the_formulary_hook_a_formula_is_422(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "FORMULARY_HOOK", ("tests.test_screening_api", "no_such_function"))
    submit(world.patient, world.users["practitioner"])
    response = _screening(client_for(world.users["practitioner"]), world.patient, formula=7)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "formula"


# --- reviews --------------------------------------------------------------------------------------------


def test_review_needs_every_warning_acknowledged_and_goes_stale(world: World) -> None:
    submit(world.patient, world.users["front_desk"], medications=(("Eliquis", None),), weight_stable=False)
    client = client_for(world.users["practitioner"])
    assert client.get(f"/api/v1/patients/{world.patient.pk}/screening/review").status_code == 404
    base = {"decision": "candidate", "intake_version": 1, "on": "2026-06-01"}
    missing = _sign(
        client, world.patient, {**base, "acknowledgements": [{"code": "anticoagulant", "reason": "ok"}]}
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "acknowledgements"
    assert "unstable-weight" in missing.json()["errors"][0]["message"]
    stray = _sign(client, world.patient, {**base, "acknowledgements": [{"code": "pregnant", "reason": "no"}]})
    assert stray.status_code == 422
    twice = _sign(
        client,
        world.patient,
        {**base, "acknowledgements": [{"code": "anticoagulant", "reason": "a"}] * 2},
    )
    assert twice.status_code == 422
    assert not Review.objects.exists()
    acks = [
        {"code": "anticoagulant", "reason": "Cardiologist agrees to a 48 h pause."},
        {"code": "unstable-weight", "reason": "Skin indication only."},
    ]
    signed = _sign(client, world.patient, {**base, "acknowledgements": acks, "note": "Go ahead."})
    assert signed.status_code == 201, signed.content
    body = signed.json()
    assert body["decision"] == "candidate"
    assert body["verdict"] == "review"
    assert body["intake_version"] == 1
    assert body["rules_version"] == RULES_VERSION
    assert body["session_date"] == "2026-06-01"
    assert body["acknowledgements"] == acks
    assert [finding["code"] for finding in body["findings"]] == ["anticoagulant", "unstable-weight"]
    assert body["signed_by"] == "practitioner"
    assert body["stale"] is False
    review = Review.objects.get()
    assert review.signed_by == world.users["practitioner"]
    assert review.signed_at is not None

    # A new intake makes the review stale, and says so.
    submit(world.patient, world.users["front_desk"], medications=(("Eliquis", None),))
    read = client.get(f"/api/v1/patients/{world.patient.pk}/screening/review").json()
    assert read["stale"] is True
    assert "version 2" in read["stale_reasons"][0]
    # Signing against the old version is refused: look at the new screening first.
    old = _sign(client, world.patient, {**base, "acknowledgements": acks})
    assert old.status_code == 422
    assert old.json()["errors"][0]["field"] == "intake_version"


def test_a_block_cannot_be_signed_as_candidate(world: World) -> None:
    submit(world.patient, world.users["practitioner"], pregnancy="pregnant")
    client = client_for(world.users["medical_director"])
    refused = _sign(client, world.patient, {"decision": "candidate", "intake_version": 1})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "decision"
    accepted = _sign(client, world.patient, {"decision": "not_candidate", "intake_version": 1})
    assert accepted.status_code == 201
    assert accepted.json()["verdict"] == "ineligible"


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "maybe", "intake_version": 1},
        {"decision": "candidate", "intake_version": "1"},
        {"decision": "candidate", "intake_version": 0},
        {"decision": "candidate", "intake_version": 1, "acknowledgements": [{"code": "x"}]},
        {"decision": "candidate", "intake_version": 1, "signature": "me"},
        {"decision": "candidate", "intake_version": 1, "on": "01/06/2026"},
    ],
)
def test_bad_review_input_is_422(world: World, body: dict[str, object]) -> None:
    submit(world.patient, world.users["practitioner"])
    response = _sign(client_for(world.users["practitioner"]), world.patient, body)
    assert response.status_code == 422
    assert not Review.objects.exists()


# --- audit ------------------------------------------------------------------------------------------------


def _actions(patient: Patient) -> list[str]:
    return list(
        AuditEvent.objects.filter(patient_id=patient.pk).order_by("seq").values_list("action", flat=True)
    )


def test_every_intake_and_screening_operation_is_audited(world: World) -> None:
    client = client_for(world.users["practitioner"])
    patient = world.patient
    steps: list[tuple[Callable[[], Any], str]] = [
        (lambda: _put(client, patient, GOOD), Action.INTAKE_SUBMIT),
        (lambda: client.get(f"/api/v1/patients/{patient.pk}/intake"), Action.INTAKE_READ),
        (lambda: _screening(client, patient), Action.SCREENING_READ),
        (
            lambda: _sign(
                client,
                patient,
                {
                    "decision": "not_candidate",
                    "intake_version": 1,
                    "acknowledgements": [],
                },
            ),
            Action.SCREENING_REVIEW,
        ),
        (lambda: client.get(f"/api/v1/patients/{patient.pk}/screening/review"), Action.SCREENING_READ),
        (lambda: client.post(f"/api/v1/patients/{patient.pk}/intake/invite"), Action.INTAKE_INVITE),
    ]
    for call, action in steps:
        before = _actions(patient)
        response = call()
        assert response.status_code < 300, response.content
        assert _actions(patient)[len(before) :] == [action]
        event = AuditEvent.objects.order_by("-seq").first()
        assert event is not None
        assert (event.user_id, event.clinic_id, event.patient_id) == (
            world.users["practitioner"].pk,
            world.clinic.pk,
            patient.pk,
        )
        assert event.role == "practitioner"


def test_refused_writes_are_not_audited_as_done(world: World) -> None:
    client = client_for(world.users["practitioner"])
    _put(client, world.patient, {**GOOD, "conditions": ["nope"]})
    assert Action.INTAKE_SUBMIT not in _actions(world.patient)


# --- invitation by API ----------------------------------------------------------------------------------


def test_invite_creates_the_portal_account_and_emails_a_link(world: World) -> None:
    client = client_for(world.users["front_desk"])
    response = client.post(f"/api/v1/patients/{world.patient.pk}/intake/invite")
    assert response.status_code == 202
    world.patient.refresh_from_db()
    assert world.patient.user is not None
    assert not world.patient.user.has_usable_password()
    assert response.json()["username"] == world.patient.user.username == world.patient.email
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [world.patient.email]
    assert "/screening/invitation/" in str(mail.outbox[0].body)
    # A second invitation reuses the account and sends a fresh link.
    assert client.post(f"/api/v1/patients/{world.patient.pk}/intake/invite").status_code == 202
    world.patient.refresh_from_db()
    assert Patient.objects.filter(user=world.patient.user).count() == 1
    assert len(mail.outbox) == 2


def test_invite_without_email_is_422(world: World) -> None:
    Patient.objects.filter(pk=world.patient.pk).update(email="")
    response = client_for(world.users["front_desk"]).post(
        f"/api/v1/patients/{world.patient.pk}/intake/invite"
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "email"
    assert mail.outbox == []


# --- authorisation matrix: every role × every new operation × {own, other patient, other clinic} ----------

OK = {200, 201, 202, 302}
FORM_INTAKE = {
    "pregnancy": "none",
    "weight_stable": "yes",
    "allergies": "",
    "goals": "",
    "previous_treatments": "",
    "medications-TOTAL_FORMS": "1",
    "medications-INITIAL_FORMS": "0",
    "medications-MIN_NUM_FORMS": "0",
    "medications-MAX_NUM_FORMS": "40",
    "medications-0-name": "Advil",
    "medications-0-last_taken": "",
}
FORM_REVIEW = {
    "decision": "not_candidate",
    "intake_version": "1",
    "on": "",
    "formula": "",
    "areas": "",
    "note": "",
    "confirm": "on",
}


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    url: Callable[[int], str]
    body: Mapping[str, object] | None = None
    json_body: bool = False


OPERATIONS = [
    Operation("api-intake-read", "get", lambda pk: f"/api/v1/patients/{pk}/intake"),
    Operation(
        "api-intake-put", "put", lambda pk: f"/api/v1/patients/{pk}/intake", {"pregnancy": "none"}, True
    ),
    Operation("api-invite", "post", lambda pk: f"/api/v1/patients/{pk}/intake/invite", {}, True),
    Operation("api-screening", "get", lambda pk: f"/api/v1/patients/{pk}/screening"),
    Operation("api-review-read", "get", lambda pk: f"/api/v1/patients/{pk}/screening/review"),
    Operation(
        "api-review-sign",
        "post",
        lambda pk: f"/api/v1/patients/{pk}/screening/review",
        {"decision": "not_candidate", "intake_version": 1},
        True,
    ),
    Operation("panel", "get", lambda pk: f"/screening/patients/{pk}/panel/"),
    Operation("desk-intake-form", "get", lambda pk: f"/screening/patients/{pk}/intake/"),
    Operation("desk-intake", "post", lambda pk: f"/screening/patients/{pk}/intake/", FORM_INTAKE),
    Operation("history", "get", lambda pk: f"/screening/patients/{pk}/intake/history/"),
    Operation("invite", "post", lambda pk: f"/screening/patients/{pk}/intake/invite/", {}),
    Operation("screening-page", "get", lambda pk: f"/screening/patients/{pk}/"),
    Operation("review-sign", "post", lambda pk: f"/screening/patients/{pk}/", FORM_REVIEW),
]

CARE = {"clinic_admin", "practitioner", "medical_director", "front_desk"}
INTAKE = {"practitioner", "medical_director", "front_desk"}
INVITE = {"clinic_admin", "practitioner", "medical_director", "front_desk"}
SCREEN = {"practitioner", "medical_director"}
ALLOWED: dict[str, set[str]] = {
    "api-intake-read": INTAKE,
    "api-intake-put": INTAKE,
    "api-invite": INVITE,
    "api-screening": SCREEN,
    "api-review-read": SCREEN,
    "api-review-sign": SCREEN,
    "panel": CARE,
    "desk-intake-form": INTAKE,
    "desk-intake": INTAKE,
    "history": INTAKE,
    "invite": INVITE,
    "screening-page": SCREEN,
    "review-sign": SCREEN,
}
# What a patient may do on their own record: read and update the intake, see the panel. Never screening.
PATIENT_OWN_ALLOWED = {
    "api-intake-read",
    "api-intake-put",
    "panel",
    "desk-intake-form",
    "desk-intake",
    "history",
}


@pytest.fixture
def reviewed_world(world: World) -> World:
    """Every target has an intake and a signed review, so reads answer 200 when allowed."""
    foreign_practitioner = staff(world.other_clinic, Role.PRACTITIONER, username="foreign-practitioner")
    for patient, user in (
        (world.own_patient, world.users["practitioner"]),
        (world.patient, world.users["practitioner"]),
        (world.foreign_patient, foreign_practitioner),
    ):
        submit(patient, user)
        services.review_sign(
            caller=Caller(user=user),
            patient=patient,
            decision="not_candidate",
            intake_version=1,
            acknowledgements={},
        )
    return world


def _call(client: Client, operation: Operation, pk: int) -> int:
    url = operation.url(pk)
    if operation.json_body:
        response = getattr(client, operation.method)(
            url, data=json.dumps(operation.body), content_type="application/json"
        )
    elif operation.body is not None:
        response = getattr(client, operation.method)(url, data=operation.body)
    else:
        response = getattr(client, operation.method)(url)
    return int(response.status_code)


def _counts() -> tuple[int, int]:
    return Intake.objects.count(), Review.objects.count()


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
@pytest.mark.parametrize("which", ["own", "other", "foreign"])
def test_screening_operation_matrix(
    reviewed_world: World, role: str, operation: Operation, which: str
) -> None:
    world = reviewed_world
    target = {"own": world.own_patient, "other": world.patient, "foreign": world.foreign_patient}[which]
    client = client_for(world.users[role])
    before = _counts()
    mails = len(mail.outbox)
    status = _call(client, operation, target.pk)
    if which == "foreign":
        expected_ok = False
        assert status == 404
    elif role == "patient":
        expected_ok = which == "own" and operation.name in PATIENT_OWN_ALLOWED
        if which == "other":
            assert status == 404
        elif not expected_ok:
            assert status == 403
    else:
        expected_ok = role in ALLOWED[operation.name]
        if not expected_ok:
            assert status == 403
    if expected_ok:
        assert status in OK, status
    else:
        assert _counts() == before
        assert len(mail.outbox) == mails


@pytest.mark.parametrize("role", ALL_ROLES)
def test_portal_intake_is_for_patients_only(world: World, role: str) -> None:
    status = client_for(world.users[role]).get("/screening/portal/intake/").status_code
    assert (status == 200) == (role == "patient")
    if role != "patient":
        assert status == 404


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/patients/{pk}/intake",
        "/api/v1/patients/{pk}/screening",
        "/api/v1/patients/{pk}/screening/review",
        "/api/v1/patients/{pk}/intake/invite",
        "/screening/patients/{pk}/",
        "/screening/patients/{pk}/panel/",
        "/screening/patients/{pk}/intake/",
        "/screening/patients/{pk}/intake/history/",
        "/screening/patients/{pk}/intake/invite/",
    ],
)
def test_idor_probe_with_a_foreign_id(reviewed_world: World, method: str, url: str) -> None:
    client = client_for(reviewed_world.users["medical_director"])
    target = reviewed_world.foreign_patient
    before = _counts()
    path = url.format(pk=target.pk)
    if method == "get":
        response = client.get(path)
    else:
        # A body each endpoint would accept, so that the answer comes from the lookup, not from validation.
        body = (
            {"decision": "not_candidate", "intake_version": 1}
            if "review" in url
            else {"pregnancy": "pregnant"}
        )
        response = getattr(client, method)(path, data=json.dumps(body), content_type="application/json")
    assert response.status_code in {403, 404, 405}
    assert target.family_name.encode() not in response.content
    assert _counts() == before


def test_anonymous_gets_nothing(world: World) -> None:
    client = Client()
    assert client.get(f"/api/v1/patients/{world.patient.pk}/screening").status_code == 401
    assert _put(client, world.patient, {"pregnancy": "none"}).status_code == 401
    assert client.get(f"/screening/patients/{world.patient.pk}/panel/").status_code == 302
