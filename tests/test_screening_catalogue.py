"""The seeded catalogues as the migrations write them (issue 3, Build 2 and 3), read back from the database
and run through the screening: every condition code raises the finding, severity and rule the issue's table
names."""

from __future__ import annotations

import pytest

from mesoclinic.screening.models import Condition, Medicine, MedicineName
from mesoclinic.screening.rules import MedicineClass
from tests.conftest import World, client_for
from tests.screening_support import ensure_catalogues, submit

# Written out by hand from the issue (Build 3) and domain.md R-CAND-MED / -SITE / -HEALTH, not read from the
# migration: code → (finding code, severity, rule).
CONDITIONS = {
    "bleeding-disorder": ("significant-condition", "block", "R-CAND-MED"),
    "active-cancer": ("significant-condition", "block", "R-CAND-MED"),
    "autoimmune": ("significant-condition", "warn", "R-CAND-MED"),
    "diabetes-uncontrolled": ("significant-condition", "warn", "R-CAND-MED"),
    "site-infection": ("site-infection", "block", "R-CAND-SITE"),
    "skin-disease-at-site": ("site-infection", "block", "R-CAND-SITE"),
    "liver-disease": ("health-concern", "warn", "R-CAND-HEALTH"),
    "kidney-disease": ("health-concern", "warn", "R-CAND-HEALTH"),
    "severe-cardiovascular": ("health-concern", "warn", "R-CAND-HEALTH"),
    "psychiatric-unstable": ("health-concern", "warn", "R-CAND-HEALTH"),
    "dysphagia": ("significant-condition", "warn", "R-CAND-MED"),
}


@pytest.fixture(autouse=True)
def _catalogues(db: None) -> None:
    ensure_catalogues()


def test_the_migration_seeds_every_condition_of_the_issue() -> None:
    seeded = {row.code: (row.finding_code, row.severity, row.rule) for row in Condition.objects.all()}
    assert seeded == CONDITIONS
    assert all(row.source and row.display_label for row in Condition.objects.all())


@pytest.mark.parametrize("code", sorted(CONDITIONS))
def test_each_seeded_condition_raises_its_finding(world: World, code: str) -> None:
    submit(world.patient, world.users["practitioner"], conditions=(code,))
    body = (
        client_for(world.users["practitioner"]).get(f"/api/v1/patients/{world.patient.pk}/screening").json()
    )
    assert [(f["code"], f["severity"], f["rule"], f["subject"]) for f in body["findings"]] == [
        (*CONDITIONS[code], code)
    ]
    assert body["verdict"] == ("ineligible" if CONDITIONS[code][1] == "block" else "review")


def test_dysphagia_blocks_with_a_submental_area(world: World) -> None:
    submit(world.patient, world.users["practitioner"], conditions=("dysphagia",))
    body = (
        client_for(world.users["practitioner"])
        .get(f"/api/v1/patients/{world.patient.pk}/screening", {"areas": "submental"})
        .json()
    )
    assert [(f["code"], f["severity"]) for f in body["findings"]] == [("significant-condition", "block")]


def test_the_medicine_catalogue_has_every_class_of_the_issue() -> None:
    classes = {value for medicine in Medicine.objects.filter(clinic=None) for value in medicine.classes}
    assert classes == {str(value) for value in MedicineClass}
    aspirin = Medicine.objects.get(clinic=None, generic_name="aspirin")
    assert set(aspirin.classes) == {"nsaid", "antiplatelet"}  # counted as both (issue, Build 2)
    # every seeded name is stored folded, so that matching ignores case and accents
    assert all(row.name_folded == row.name_folded.casefold() for row in MedicineName.objects.all())
    assert MedicineName.objects.filter(clinic=None, name_folded="ibuprofene").exists()
