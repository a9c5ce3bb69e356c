"""The intake, screening and review API: shapes, bad input, brand names, formulas, reviews, audit, and the
authorisation matrix of every new operation (role × {own record, other patient, other clinic})."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role, User
from mesoclinic.audit.models import Action, AuditEvent
from mesoclinic.clinics.models import Clinic
from mesoclinic.formulary import services as formulary
from mesoclinic.formulary.models import Ingredient
from mesoclinic.patients.models import Patient
from mesoclinic.screening import services
from mesoclinic.screening.models import Intake, Medicine, MedicineName, Review
from mesoclinic.screening.rules import REVIEW_HORIZON_DAYS, REVIEW_VALIDITY_DAYS, RULES_VERSION
from tests.conftest import ALL_ROLES, World, client_for
from tests.factories import UserFactory, staff
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
            "medicines": ["apixaban"],
            "classes": ["anticoagulant"],
            "unrecognised": [],
        },
        {
            "name": "Zorblax",
            "last_taken": None,
            "medicine": None,
            "medicines": [],
            "classes": [],
            "unrecognised": ["zorblax"],
        },
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
    ("written", "generics"),
    [
        ("Eliquis", ["apixaban"]),
        ("ELIQUIS", ["apixaban"]),
        ("xarelto 20mg", ["rivaroxaban"]),
        ("Coumadin", ["warfarin"]),
        ("jantoven", ["warfarin"]),
        ("Pradaxa", ["dabigatran"]),
        ("Plavix", ["clopidogrel"]),
        ("Brilinta", ["ticagrelor"]),
        ("ADVIL", ["ibuprofen"]),
        ("motrin", ["ibuprofen"]),
        ("Aleve", ["naproxen"]),
        ("Bufferin", ["aspirin"]),
        ("Bayer", ["aspirin"]),
        ("aspirin 81 mg", ["aspirin"]),
        ("baby aspirin", ["aspirin"]),
        ("Voltaren", ["diclofenac"]),
        ("Celebrex", ["celecoxib"]),
        ("Propecia", ["finasteride"]),
        ("Proscar", ["finasteride"]),
        ("Avodart", ["dutasteride"]),
        ("Accutane", ["isotretinoin"]),
        ("Roaccutane", ["isotretinoin"]),
        ("Absorica", ["isotretinoin"]),
        ("Methotrexate", ["methotrexate"]),
        ("prednisone", ["prednisone"]),
        ("Cyclosporine", ["ciclosporin"]),
        ("tacrolimus", ["tacrolimus"]),
        ("Tylenol", ["paracetamol"]),
        # several medicines on one line: every one counts
        ("Eliquis and Advil", ["apixaban", "ibuprofen"]),
        ("Advil, aspirin", ["ibuprofen", "aspirin"]),
        ("Xarelto 20 mg + Nurofen", ["rivaroxaban", "ibuprofen"]),
        ("Kardégic et Plavix", ["aspirin", "clopidogrel"]),
        # "aspirin-free" is not aspirin
        ("Aspirin-free Excedrin", ["paracetamol"]),
        ("Excedrin", ["aspirin"]),
        # French spellings and brands (accents folded)
        ("Ibuprofène 400 mg", ["ibuprofen"]),
        ("kétoprofène", ["ketoprofen"]),
        ("Naproxène", ["naproxen"]),
        ("Diclofénac", ["diclofenac"]),
        ("Acide acétylsalicylique", ["aspirin"]),
        ("aspirine", ["aspirin"]),
        ("Kardégic 75", ["aspirin"]),
        ("Warfarine", ["warfarin"]),
        ("Coumadine", ["warfarin"]),
        ("Fluindione", ["fluindione"]),
        ("Préviscan", ["fluindione"]),
        ("Acénocoumarol", ["acenocoumarol"]),
        ("Sintrom", ["acenocoumarol"]),
        ("Mini-Sintrom", ["acenocoumarol"]),
        ("Xarelto", ["rivaroxaban"]),
        ("Eliquis 2,5 mg", ["apixaban"]),
        ("Pradaxa", ["dabigatran"]),
        ("Isotrétinoïne", ["isotretinoin"]),
        ("Curacné", ["isotretinoin"]),
        ("Finastéride", ["finasteride"]),
        ("Chibro-Proscar", ["finasteride"]),
        ("Dutastéride", ["dutasteride"]),
        ("Avodart", ["dutasteride"]),
    ],
)
def test_brand_and_generic_names_are_matched_case_insensitively(
    world: World, written: str, generics: list[str]
) -> None:
    match = services.medicine_matches(clinic_id=world.clinic.pk, names=[written])[written]
    assert list(match.generic_names) == generics
    assert match.unrecognised == ()


def test_aspirin_is_an_nsaid_and_an_antiplatelet(world: World) -> None:
    match = services.medicine_matches(clinic_id=world.clinic.pk, names=["Bufferin"])["Bufferin"]
    assert match.classes == {"nsaid", "antiplatelet"}


def test_a_line_with_two_medicines_warns_for_both(world: World) -> None:
    """The safety bug of the first version: only the first medicine of a line was matched."""
    submit(
        world.patient,
        world.users["practitioner"],
        medications=(("Eliquis and Advil", TODAY - timedelta(days=2)),),
    )
    body = _screening(client_for(world.users["practitioner"]), world.patient).json()
    assert [(f["code"], f["subject"]) for f in body["findings"]] == [
        ("anticoagulant", "Eliquis and Advil"),
        ("nsaid-washout", "Eliquis and Advil"),
    ]
    assert "apixaban" in body["findings"][0]["message"]
    assert "ibuprofen" in body["findings"][1]["message"]


def test_a_line_recognised_in_part_is_flagged(world: World) -> None:
    submit(world.patient, world.users["practitioner"], medications=(("Advil + Zorblax", None),))
    body = _screening(client_for(world.users["practitioner"]), world.patient).json()
    assert {f["code"] for f in body["findings"]} == {"nsaid-washout", "unknown-medicine"}
    unknown = next(f for f in body["findings"] if f["code"] == "unknown-medicine")
    assert "zorblax" in unknown["message"] and "ibuprofen" in unknown["message"]


def test_a_clinic_extends_the_catalogue_for_itself_only(world: World) -> None:
    caller = Caller(user=world.users["practitioner"])
    services.medicine_add(
        caller=caller,
        clinic=world.clinic,
        generic_name="vorapaxar",
        classes=["antiplatelet"],
        names=["Zontivity"],
    )
    # and a local brand for a global medicine
    apixaban = Medicine.objects.get(clinic=None, generic_name="apixaban")
    services.medicine_names_add(caller=caller, clinic=world.clinic, medicine=apixaban, names=["Apixa"])
    mine = services.medicine_matches(clinic_id=world.clinic.pk, names=["zontivity", "APIXA"])
    theirs = services.medicine_matches(clinic_id=world.other_clinic.pk, names=["zontivity", "APIXA"])
    assert mine["zontivity"].generic_names == ("vorapaxar",)
    assert mine["zontivity"].classes == {"antiplatelet"}
    assert mine["APIXA"].generic_names == ("apixaban",)
    assert not theirs["zontivity"].recognised and not theirs["APIXA"].recognised
    # what the screening makes of it
    submit(world.patient, world.users["practitioner"], medications=(("Zontivity 2.08 mg", None),))
    body = _screening(client_for(world.users["practitioner"]), world.patient).json()
    assert [f["code"] for f in body["findings"]] == ["anticoagulant"]


# --- the medicine catalogue API -------------------------------------------------------------------------


def _post(client: Client, url: str, body: object) -> Any:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_medicine_catalogue_api_search_add_and_add_names(world: World) -> None:
    client = client_for(world.users["medical_director"])
    found = client.get("/api/v1/screening/medicines", {"q": "eliq"})
    assert found.status_code == 200
    assert [m["generic_name"] for m in found.json()] == ["apixaban"]
    assert {"name": "Eliquis", "is_brand": True, "clinic_only": False} in found.json()[0]["names"]
    created = _post(
        client,
        "/api/v1/screening/medicines",
        {"generic_name": "Vorapaxar", "classes": ["antiplatelet"], "names": ["Zontivity"]},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["generic_name"], body["classes"], body["clinic_only"]) == (
        "vorapaxar",
        ["antiplatelet"],
        True,
    )
    assert {name["name"] for name in body["names"]} == {"vorapaxar", "Zontivity"}
    apixaban = Medicine.objects.get(clinic=None, generic_name="apixaban")
    added = _post(client, f"/api/v1/screening/medicines/{apixaban.pk}/names", {"names": ["Apixa"]})
    assert added.status_code == 201, added.content
    assert {"name": "Apixa", "is_brand": True, "clinic_only": True} in added.json()["names"]
    # the other clinic sees neither
    assert not MedicineName.objects.filter(name="Apixa", clinic=world.other_clinic).exists()
    events = AuditEvent.objects.filter(action__in=[Action.MEDICINE_ADD, Action.MEDICINE_NAME_ADD]).order_by(
        "seq"
    )
    assert [(e.action, e.clinic_id, e.patient_id, e.user_id) for e in events] == [
        (Action.MEDICINE_ADD, world.clinic.pk, None, world.users["medical_director"].pk),
        (Action.MEDICINE_NAME_ADD, world.clinic.pk, None, world.users["medical_director"].pk),
    ]


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        (
            "/api/v1/screening/medicines",
            {"generic_name": "apixaban", "classes": ["anticoagulant"]},
            "generic_name",
        ),
        (
            "/api/v1/screening/medicines",
            {"generic_name": "Eliquis", "classes": ["anticoagulant"]},
            "generic_name",
        ),
        ("/api/v1/screening/medicines", {"generic_name": "vorapaxar", "classes": []}, "classes"),
        ("/api/v1/screening/medicines", {"generic_name": "vorapaxar", "classes": ["thinner"]}, "classes.0"),
        (
            "/api/v1/screening/medicines",
            {"generic_name": "vorapaxar", "classes": ["antiplatelet"], "names": ["Advil"]},
            "names.0",
        ),
        (
            "/api/v1/screening/medicines",
            {"generic_name": "vorapaxar", "classes": ["antiplatelet"], "names": ["Zontivity", "St. John's"]},
            "names.1",
        ),
        ("/api/v1/screening/medicines", {"generic_name": "", "classes": ["antiplatelet"]}, "generic_name"),
        (
            "/api/v1/screening/medicines",
            {"generic_name": "x" * 101, "classes": ["antiplatelet"]},
            "generic_name",
        ),
        (
            "/api/v1/screening/medicines",
            {"generic_name": "vorapaxar", "classes": ["antiplatelet"], "dose": 1},
            "dose",
        ),
        ("/api/v1/screening/medicines/{apixaban}/names", {"names": []}, "names"),
        ("/api/v1/screening/medicines/{apixaban}/names", {"names": ["Eliquis"]}, "names.0"),
        ("/api/v1/screening/medicines/{apixaban}/names", {"names": ["Apixa", "APIXA"]}, "names.1"),
        ("/api/v1/screening/medicines/{apixaban}/names", {"names": ["  "]}, "names.0"),
    ],
)
def test_bad_catalogue_input_is_422_naming_the_field_and_nothing_is_written(
    world: World, url: str, body: dict[str, object], field: str
) -> None:
    apixaban = Medicine.objects.get(clinic=None, generic_name="apixaban")
    client = client_for(world.users["practitioner"])
    before = (Medicine.objects.count(), MedicineName.objects.count(), AuditEvent.objects.count())
    response = _post(client, url.format(apixaban=apixaban.pk), body)
    assert response.status_code == 422, response.content
    assert field in [error["field"] for error in response.json()["errors"]], response.json()
    assert (Medicine.objects.count(), MedicineName.objects.count(), AuditEvent.objects.count()) == before


def test_names_cannot_be_added_to_another_clinics_medicine(world: World) -> None:
    theirs = services.medicine_add(
        caller=Caller(user=staff(world.other_clinic, Role.PRACTITIONER, username="their-practitioner")),
        clinic=world.other_clinic,
        generic_name="vorapaxar",
        classes=["antiplatelet"],
    )
    client = client_for(world.users["practitioner"])
    response = _post(client, f"/api/v1/screening/medicines/{theirs.pk}/names", {"names": ["Zontivity"]})
    assert response.status_code == 404
    assert not MedicineName.objects.filter(name="Zontivity").exists()
    assert "vorapaxar" not in client.get("/api/v1/screening/medicines", {"q": "vora"}).content.decode()


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
        set(finding) == {"code", "severity", "rule", "message", "source", "subject", "key"}
        for finding in body["findings"]
    )
    assert [(f["code"], f["severity"], f["rule"], f["key"]) for f in body["findings"]] == [
        ("anticoagulant", "warn", "R-CAND-ANTICOAG", "anticoagulant:Eliquis"),
        ("nsaid-washout", "warn", "R-PRE-NSAID", "nsaid-washout:advil"),
        ("unknown-medicine", "warn", "R-CAND-ANTICOAG", "unknown-medicine:Zorblax"),
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


def _formula(world: World, name: str, codes: list[str], indication: str, clinic: Clinic | None = None) -> int:
    """A formula of the clinic, made through the formulary's service (the seeded global ingredients)."""
    clinic = clinic or world.clinic
    director = (
        world.users["medical_director"]
        if clinic == world.clinic
        else staff(clinic, Role.MEDICAL_DIRECTOR, username=f"director-{clinic.pk}")
    )
    formula = formulary.formula_create(
        caller=Caller(user=director),
        clinic=clinic,
        name=name,
        content=formulary.FormulaContent(
            components=[
                formulary.ComponentIn(
                    Ingredient.objects.get(clinic__isnull=True, code=code).pk, "10", "mg/mL"
                )
                for code in codes
            ],
            total_volume_ml="10",
            indications=[indication],
        ),
    )
    return int(formula.pk)


def _found(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((f["code"], f["severity"], f["subject"]) for f in body["findings"])


def test_a_planned_formula_is_checked_by_the_formularys_rules(world: World) -> None:
    """R-CAND-XALLERGY, R-CAND-ANDRO and R-REG for a real formula of the clinic (a French clinic)."""
    submit(world.patient, world.users["practitioner"], allergies=("Soya lecithin",), weight_stable=None)
    lipo = _formula(world, "Lipo", ["phosphatidylcholine", "deoxycholic-acid"], "localized-fat")
    hair = _formula(world, "Hair", ["finasteride"], "hair-loss")
    client = client_for(world.users["practitioner"])
    body = _screening(client, world.patient, formula=lipo).json()
    assert body["verdict"] == "ineligible"
    assert _found(body) == [
        ("allergy-caution", "warn", "phosphatidylcholine"),
        ("banned-in-jurisdiction", "block", ""),  # fat lysis by mesotherapy mixtures (decree 2011-382)
        ("banned-in-jurisdiction", "block", "deoxycholic-acid"),
        ("banned-in-jurisdiction", "block", "phosphatidylcholine"),
        ("unstable-weight", "warn", ""),
    ]
    assert all(f["rule"] == "R-REG" for f in body["findings"] if f["code"] == "banned-in-jurisdiction")
    hair_body = _screening(client, world.patient, formula=hair).json()
    assert ("teratogen", "warn", "finasteride") in _found(hair_body)  # for men only: she confirms
    assert ("off-label", "warn", "finasteride") in _found(hair_body)


def test_r_reg_follows_the_clinics_jurisdiction(world: World) -> None:
    """The same PC/DC formula: banned in France, off-label / unapproved in the US (domain.md R-REG)."""
    submit(world.patient, world.users["practitioner"])
    lipo = _formula(world, "Lipo", ["phosphatidylcholine", "deoxycholic-acid"], "localized-fat")
    client = client_for(world.users["practitioner"])
    french = _screening(client, world.patient, formula=lipo).json()
    assert {(f["code"], f["severity"]) for f in french["findings"] if f["rule"] == "R-REG"} == {
        ("banned-in-jurisdiction", "block")
    }
    Clinic.objects.filter(pk=world.clinic.pk).update(jurisdiction="US")
    american = _screening(client, world.patient, formula=lipo).json()
    regulatory = {
        (f["code"], f["severity"], f["subject"]) for f in american["findings"] if f["rule"] == "R-REG"
    }
    assert ("off-label", "warn", "deoxycholic-acid") in regulatory  # Kybella: approved for submental fat only
    assert (
        "not-approved",
        "warn",
        "phosphatidylcholine",
    ) in regulatory  # compounded PC is an unapproved drug
    assert not any(code == "banned-in-jurisdiction" for code, _s, _subject in regulatory)
    assert american["verdict"] == "review"


def test_an_unknown_or_foreign_formula_is_422(world: World) -> None:
    submit(world.patient, world.users["practitioner"])
    theirs = _formula(world, "Theirs", ["finasteride"], "hair-loss", clinic=world.other_clinic)
    client = client_for(world.users["practitioner"])
    for formula in (theirs, 999_999):
        response = _screening(client, world.patient, formula=formula)
        assert response.status_code == 422
        assert response.json()["errors"] == [{"field": "formula", "message": "Unknown formula."}]


# --- reviews --------------------------------------------------------------------------------------------

SOON = (TODAY + timedelta(days=14)).isoformat()


def test_review_needs_every_warning_acknowledged_and_goes_stale(world: World) -> None:
    submit(world.patient, world.users["front_desk"], medications=(("Eliquis", None),), weight_stable=False)
    client = client_for(world.users["practitioner"])
    assert client.get(f"/api/v1/patients/{world.patient.pk}/screening/review").status_code == 404
    base = {"decision": "candidate", "intake_version": 1, "on": SOON}
    missing = _sign(
        client,
        world.patient,
        {**base, "acknowledgements": [{"key": "anticoagulant:Eliquis", "reason": "ok"}]},
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "acknowledgements"
    assert "unstable-weight" in missing.json()["errors"][0]["message"]
    stray = _sign(client, world.patient, {**base, "acknowledgements": [{"key": "pregnant", "reason": "no"}]})
    assert stray.status_code == 422
    twice = _sign(
        client,
        world.patient,
        {**base, "acknowledgements": [{"key": "anticoagulant:Eliquis", "reason": "a"}] * 2},
    )
    assert twice.status_code == 422
    both_names = _sign(
        client,
        world.patient,
        {
            **base,
            "acknowledgements": [
                {"key": "anticoagulant:Eliquis", "reason": "a"},
                {"code": "anticoagulant", "reason": "b"},
                {"key": "unstable-weight", "reason": "c"},
            ],
        },
    )
    assert both_names.status_code == 422  # one warning, acknowledged twice (by key and by its code)
    assert not Review.objects.exists()
    acks = [
        {"key": "anticoagulant:Eliquis", "reason": "Cardiologist agrees to a 48 h pause."},
        {
            "code": "unstable-weight",
            "reason": "Skin indication only.",
        },  # an older client: a code, one warning
    ]
    signed = _sign(client, world.patient, {**base, "acknowledgements": acks, "note": "Go ahead."})
    assert signed.status_code == 201, signed.content
    body = signed.json()
    assert body["decision"] == "candidate"
    assert body["verdict"] == "review"
    assert body["intake_version"] == 1
    assert body["rules_version"] == RULES_VERSION
    assert body["session_date"] == SOON
    assert body["acknowledgements"] == [
        {
            "key": "anticoagulant:Eliquis",
            "code": "anticoagulant",
            "subject": "Eliquis",
            "reason": "Cardiologist agrees to a 48 h pause.",
        },
        {
            "key": "unstable-weight",
            "code": "unstable-weight",
            "subject": "",
            "reason": "Skin indication only.",
        },
    ]
    assert [finding["code"] for finding in body["findings"]] == ["anticoagulant", "unstable-weight"]
    assert body["signed_by"] == "practitioner"
    assert body["stale"] is False
    review = Review.objects.get()
    assert review.signed_by == world.users["practitioner"]
    assert review.signed_at is not None
    assert services.current_review(world.patient) == review

    # A new intake makes the review stale, and says so.
    submit(world.patient, world.users["front_desk"], medications=(("Eliquis", None),))
    read = client.get(f"/api/v1/patients/{world.patient.pk}/screening/review").json()
    assert read["stale"] is True
    assert "version 2" in read["stale_reasons"][0]
    assert services.current_review(world.patient) is None
    # Signing against the old version is refused: look at the new screening first.
    old = _sign(client, world.patient, {**base, "acknowledgements": acks})
    assert old.status_code == 422
    assert old.json()["errors"][0]["field"] == "intake_version"


def test_two_warnings_of_one_code_need_a_reason_each(world: World) -> None:
    submit(world.patient, world.users["front_desk"], conditions=("autoimmune", "diabetes-uncontrolled"))
    client = client_for(world.users["practitioner"])
    findings = _screening(client, world.patient).json()["findings"]
    assert [f["key"] for f in findings] == [
        "significant-condition:autoimmune",
        "significant-condition:diabetes-uncontrolled",
    ]
    base = {"decision": "candidate", "intake_version": 1}
    by_code = _sign(
        client,
        world.patient,
        {**base, "acknowledgements": [{"code": "significant-condition", "reason": "x"}]},
    )
    assert by_code.status_code == 422
    assert "significant-condition:autoimmune" in by_code.json()["errors"][0]["message"]
    one = _sign(
        client,
        world.patient,
        {**base, "acknowledgements": [{"key": "significant-condition:autoimmune", "reason": "Quiescent."}]},
    )
    assert one.status_code == 422
    assert "diabetes-uncontrolled" in " ".join(e["message"] for e in one.json()["errors"])
    assert not Review.objects.exists()
    each = _sign(
        client,
        world.patient,
        {
            **base,
            "acknowledgements": [
                {"key": "significant-condition:autoimmune", "reason": "Quiescent for years."},
                {"key": "significant-condition:diabetes-uncontrolled", "reason": "HbA1c 6.8 % last month."},
            ],
        },
    )
    assert each.status_code == 201, each.content
    assert [(a["subject"], a["reason"]) for a in each.json()["acknowledgements"]] == [
        ("autoimmune", "Quiescent for years."),
        ("diabetes-uncontrolled", "HbA1c 6.8 % last month."),
    ]


@pytest.mark.parametrize(
    ("days", "ok"),
    [(-1, False), (0, True), (REVIEW_HORIZON_DAYS, True), (REVIEW_HORIZON_DAYS + 1, False), (None, True)],
)
def test_a_review_is_signed_for_today_up_to_the_horizon(world: World, days: int | None, ok: bool) -> None:
    submit(world.patient, world.users["practitioner"])
    body: dict[str, object] = {"decision": "not_candidate", "intake_version": 1}
    if days is not None:
        body["on"] = (TODAY + timedelta(days=days)).isoformat()
    response = _sign(client_for(world.users["practitioner"]), world.patient, body)
    if ok:
        assert response.status_code == 201, response.content
        assert response.json()["session_date"] == (TODAY + timedelta(days=days or 0)).isoformat()
    else:
        assert response.status_code == 422
        assert [error["field"] for error in response.json()["errors"]] == ["on"]
        assert not Review.objects.exists()


def test_the_year_2999_is_refused(world: World) -> None:
    submit(world.patient, world.users["practitioner"])
    response = _sign(
        client_for(world.users["practitioner"]),
        world.patient,
        {"decision": "not_candidate", "intake_version": 1, "on": "2999-01-01"},
    )
    assert response.status_code == 422
    assert not Review.objects.exists()


def _sign_directly(world: World, decision: str = "candidate") -> Review:
    return services.review_sign(
        caller=Caller(user=world.users["practitioner"]),
        patient=world.patient,
        decision=decision,
        intake_version=Intake.objects.filter(patient=world.patient).count(),
        acknowledgements={},
    )


def test_a_review_goes_stale_when_the_rules_change(world: World) -> None:
    submit(world.patient, world.users["practitioner"])
    review = _sign_directly(world)
    assert services.current_review(world.patient) == review
    # A review signed under an earlier rules version (as the rows of an older release are).
    Review.objects.filter(pk=review.pk).update(rules_version="screening-2026.1")
    read = client_for(world.users["practitioner"]).get(
        f"/api/v1/patients/{world.patient.pk}/screening/review"
    )
    assert read.json()["stale"] is True
    assert "screening-2026.1" in read.json()["stale_reasons"][0]
    assert services.current_review(world.patient) is None


def test_a_review_goes_stale_after_its_validity(world: World) -> None:
    submit(world.patient, world.users["practitioner"])
    review = _sign_directly(world)
    zone = world.clinic.zone
    for days, stale in ((REVIEW_VALIDITY_DAYS, False), (REVIEW_VALIDITY_DAYS + 1, True)):
        signed = timezone.make_aware(datetime.combine(TODAY - timedelta(days=days), time(12)), zone)
        Review.objects.filter(pk=review.pk).update(signed_at=signed)
        read = client_for(world.users["practitioner"]).get(
            f"/api/v1/patients/{world.patient.pk}/screening/review"
        )
        assert read.json()["stale"] is stale, days
        assert (services.current_review(world.patient) is None) is stale


def test_current_review_is_the_latest_candidate_decision_only(world: World) -> None:
    assert services.current_review(world.patient) is None  # nothing signed
    submit(world.patient, world.users["practitioner"])
    first = _sign_directly(world, "candidate")
    assert services.current_review(world.patient) == first
    _sign_directly(world, "not_candidate")  # the latest decision speaks
    assert services.current_review(world.patient) is None
    third = _sign_directly(world, "candidate")
    assert services.current_review(world.patient) == third


def test_a_block_cannot_be_signed_as_candidate(world: World) -> None:
    submit(world.patient, world.users["practitioner"], pregnancy="pregnant")
    client = client_for(world.users["medical_director"])
    refused = _sign(client, world.patient, {"decision": "candidate", "intake_version": 1})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "decision"
    accepted = _sign(client, world.patient, {"decision": "not_candidate", "intake_version": 1})
    assert accepted.status_code == 201
    assert accepted.json()["verdict"] == "ineligible"
    assert services.current_review(world.patient) is None


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "maybe", "intake_version": 1},
        {"decision": "candidate", "intake_version": "1"},
        {"decision": "candidate", "intake_version": 0},
        {"decision": "candidate", "intake_version": 1, "acknowledgements": [{"code": "x"}]},
        {"decision": "candidate", "intake_version": 1, "acknowledgements": [{"reason": "no name"}]},
        {
            "decision": "candidate",
            "intake_version": 1,
            "acknowledgements": [{"key": "a", "code": "a", "reason": "both"}],
        },
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


def test_a_later_invitation_goes_to_the_accounts_email_only(world: World) -> None:
    """A desk edit of the record's email must not send a password link to someone else."""
    client = client_for(world.users["front_desk"])
    assert client.post(f"/api/v1/patients/{world.patient.pk}/intake/invite").status_code == 202
    world.patient.refresh_from_db()
    account = world.patient.user
    assert account is not None and account.email == world.patient.email
    Patient.objects.filter(pk=world.patient.pk).update(email="someone.else@example.org")
    refused = client.post(f"/api/v1/patients/{world.patient.pk}/intake/invite")
    assert refused.status_code == 422
    error = refused.json()["errors"][0]
    assert error["field"] == "email"
    assert "someone.else@example.org" in error["message"] and account.email in error["message"]
    assert [message.to for message in mail.outbox] == [[account.email]]
    # Back to the account's address (case and spaces aside): the link goes there again.
    Patient.objects.filter(pk=world.patient.pk).update(email=f"  {account.email.upper()} ")
    assert client.post(f"/api/v1/patients/{world.patient.pk}/intake/invite").status_code == 202
    assert mail.outbox[-1].to == [account.email]


def test_a_taken_sign_in_name_gets_a_suffix(world: World) -> None:
    taken = world.patient.email.strip().lower()
    UserFactory.create(username=taken)
    UserFactory.create(username=f"{taken}-2")
    response = client_for(world.users["front_desk"]).post(
        f"/api/v1/patients/{world.patient.pk}/intake/invite"
    )
    assert response.status_code == 202
    assert response.json()["username"] == f"{taken}-3"


@override_settings(
    EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1", EMAIL_PORT=9
)
def test_an_invitation_that_cannot_be_sent_says_so_and_can_be_sent_again(world: World) -> None:
    client = client_for(world.users["front_desk"])
    failed = client.post(f"/api/v1/patients/{world.patient.pk}/intake/invite")
    assert failed.status_code == 503
    assert "could not be sent" in failed.json()["detail"]
    world.patient.refresh_from_db()
    assert world.patient.user is not None  # the account was committed before the email was tried
    assert _actions(world.patient)[-2:] == [Action.INTAKE_INVITE, Action.INTAKE_INVITE_FAILED]
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        again = client.post(f"/api/v1/patients/{world.patient.pk}/intake/invite")
    assert again.status_code == 202
    assert again.json()["username"] == world.patient.user.username
    assert len(mail.outbox) == 1


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
    """Every target has an intake and a signed review, so reads answer 200 when allowed; the portal account's
    email is the record's (so that a re-invitation may go to it)."""
    User.objects.filter(pk=world.users["patient"].pk).update(email=world.own_patient.email)
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
    assert client.get("/api/v1/screening/medicines").status_code == 401
    assert client.get("/screening/medicines/").status_code == 302


# --- the medicine catalogue: every role × every operation × {own clinic, other clinic} --------------------

MEDICINE_ROLES = {"clinic_admin", "practitioner", "medical_director"}


@dataclass(frozen=True)
class CatalogueOperation:
    name: str
    method: str
    url: str
    body: Mapping[str, object] | None = None
    json_body: bool = False


def _catalogue_operations(clinic_id: int, apixaban_id: int) -> list[CatalogueOperation]:
    return [
        CatalogueOperation("api-list", "get", f"/api/v1/screening/medicines?clinic_id={clinic_id}"),
        CatalogueOperation(
            "api-create",
            "post",
            "/api/v1/screening/medicines",
            {"clinic_id": clinic_id, "generic_name": "vorapaxar", "classes": ["antiplatelet"]},
            True,
        ),
        CatalogueOperation(
            "api-names",
            "post",
            f"/api/v1/screening/medicines/{apixaban_id}/names",
            {"clinic_id": clinic_id, "names": ["Apixa"]},
            True,
        ),
        CatalogueOperation("page", "get", f"/screening/medicines/?clinic={clinic_id}"),
        CatalogueOperation(
            "page-add",
            "post",
            "/screening/medicines/",
            {"clinic": clinic_id, "action": "add", "generic_name": "vorapaxar", "classes": "antiplatelet"},
        ),
        CatalogueOperation(
            "page-names",
            "post",
            "/screening/medicines/",
            {"clinic": clinic_id, "action": "names", "medicine": apixaban_id, "names": "Apixa"},
        ),
    ]


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("which", ["own", "other"])
def test_catalogue_operation_matrix(world: World, role: str, which: str) -> None:
    clinic = world.clinic if which == "own" else world.other_clinic
    apixaban = Medicine.objects.get(clinic=None, generic_name="apixaban")
    client = client_for(world.users[role])
    for operation in _catalogue_operations(clinic.pk, apixaban.pk):
        before = (Medicine.objects.count(), MedicineName.objects.count())
        if operation.json_body:
            response = getattr(client, operation.method)(
                operation.url, data=json.dumps(operation.body), content_type="application/json"
            )
        elif operation.body is not None:
            response = getattr(client, operation.method)(operation.url, data=operation.body)
        else:
            response = getattr(client, operation.method)(operation.url)
        allowed = which == "own" and role in MEDICINE_ROLES
        if allowed:
            assert response.status_code in OK, (operation.name, response.status_code, response.content[:300])
        else:
            assert response.status_code == 403, (operation.name, response.status_code)
            assert (Medicine.objects.count(), MedicineName.objects.count()) == before, operation.name
        if allowed and operation.method == "post":
            # undo, so the next operation starts from the same catalogue
            Medicine.objects.filter(clinic=clinic).delete()
            MedicineName.objects.filter(clinic=clinic).delete()


# --- the invitation link: whoever follows it, only a valid token for a portal account sets a password ------


def _invitation_url(user_pk: int, token: str) -> str:
    return f"/screening/invitation/{urlsafe_base64_encode(force_bytes(user_pk))}/{token}/"


@pytest.mark.parametrize("role", [*ALL_ROLES, "anonymous"])
def test_invitation_accept_matrix(world: World, role: str) -> None:
    """The accept view is open by design (the emailed token is the credential). For every visitor: a forged
    token, another account's token, or a staff account's valid token sets no password and signs nobody in."""
    portal = world.users["patient"]
    staff_user = world.users["practitioner"]
    client = Client() if role == "anonymous" else client_for(world.users[role])
    password = "a long enough passphrase 2026"
    cases = [
        _invitation_url(portal.pk, "forged-token"),
        _invitation_url(portal.pk, default_token_generator.make_token(staff_user)),  # someone else's token
        _invitation_url(staff_user.pk, default_token_generator.make_token(staff_user)),  # staff: not here
    ]
    for url in cases:
        opened = client.get(url, follow=True)
        assert opened.status_code == 200
        assert opened.context["validlink"] is False, url
        posted = client.post(
            opened.redirect_chain[-1][0] if opened.redirect_chain else url,
            {
                "new_password1": password,
                "new_password2": password,
            },
        )
        assert posted.status_code == 200
    portal.refresh_from_db()
    staff_user.refresh_from_db()
    assert not portal.check_password(password)
    assert not staff_user.check_password(password)


def test_invitation_accept_with_the_patients_valid_token(world: World) -> None:
    portal = world.users["patient"]
    client = Client()
    opened = client.get(_invitation_url(portal.pk, default_token_generator.make_token(portal)), follow=True)
    assert opened.context["validlink"] is True
