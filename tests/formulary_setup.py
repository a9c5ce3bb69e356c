"""A small, realistic formulary for one clinic, built through the services (so it is authorised and audited
like real use): a facial formula, three products, three lots, an opened multi-dose vial. Patients get an
intake questionnaire before their first preparation (screening precedes treatment)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import Role, User
from mesoclinic.clinics.models import Clinic
from mesoclinic.formulary import services
from mesoclinic.formulary.models import (
    Formula,
    FormulaVersion,
    Ingredient,
    Lot,
    Preparation,
    Product,
    StockMovement,
    VialOpening,
)
from mesoclinic.patients.models import Patient
from mesoclinic.screening.models import Intake
from tests.factories import staff
from tests.screening_support import ensure_catalogues, submit


def ensure_intake(patient: Patient, user: User) -> None:
    """An intake with nothing to report, unless the patient has one already."""
    if not Intake.objects.filter(patient_id=patient.pk).exists():
        ensure_catalogues()
        submit(patient, user, goals="Brighter skin.")


@dataclass
class Setup:
    clinic: Clinic
    director: User
    formula: Formula
    version: FormulaVersion
    ha: Product  # single-dose 2 mL
    vitc: Product  # multi-dose 10 mL
    saline: Product  # single-dose 10 mL
    ha_lot: Lot
    vitc_lot: Lot
    saline_lot: Lot
    vial: VialOpening
    today: date

    @property
    def caller(self) -> Caller:
        return Caller(user=User.objects.get(pk=self.director.pk))

    def lines(self, *, vitc_ml: str = "0.5") -> list[services.LineIn]:
        return [
            services.LineIn(self.ha_lot.pk, Decimal("2")),
            services.LineIn(self.vitc_lot.pk, Decimal(vitc_ml), self.vial.pk),
            services.LineIn(self.saline_lot.pk, Decimal("1")),
        ]

    def prepare(self, patient: Patient, *, now: datetime | None = None, vitc_ml: str = "0.5") -> Preparation:
        ensure_intake(patient, self.director)
        return services.preparation_create(
            caller=self.caller,
            patient=patient,
            formula_version=self.version,
            lines=self.lines(vitc_ml=vitc_ml),
            now=now,
        )

    def administer(
        self,
        patient: Patient,
        *,
        lot: Lot | None = None,
        volume_ml: str = "1",
        vial: VialOpening | None = None,
    ) -> StockMovement:
        """Inject straight from a lot (the single-dose HA lot unless told), no preparation."""
        return services.lot_administer(
            caller=self.caller,
            patient=patient,
            lot=lot or self.ha_lot,
            volume_ml=Decimal(volume_ml),
            vial_id=vial.pk if vial is not None else None,
        )


def ingredient(code: str) -> Ingredient:
    return Ingredient.objects.get(clinic__isnull=True, code=code)


def product(
    caller: Caller, clinic: Clinic, name: str, code: str, vial: str, *, multi: bool, low: int = 0
) -> Product:
    return services.product_create(
        caller=caller,
        clinic=clinic,
        data={
            "name": name,
            "supplier": "Test Supplies",
            "vial_volume_ml": vial,
            "multi_dose": multi,
            "beyond_use_hours": 672 if multi else 1,
            "low_stock_vials": low,
        },
        components=[services.ProductComponentIn(ingredient(code).pk, "1", "mg/mL")],
    )


def build(clinic: Clinic, director: User | None = None, *, prefix: str = "", vials: int = 10) -> Setup:
    director = director or staff(clinic, Role.MEDICAL_DIRECTOR)
    caller = Caller(user=director)
    today = clinic.today()
    formula = services.formula_create(
        caller=caller,
        clinic=clinic,
        name=f"{prefix}Facial revitalising",
        content=services.FormulaContent(
            components=[
                services.ComponentIn(ingredient("hyaluronic-acid").pk, "3", "mg/mL"),
                services.ComponentIn(ingredient("vitamin-c").pk, "50", "mg/mL"),
            ],
            total_volume_ml="3.5",
            indications=["rejuvenation"],
            diluent_id=ingredient("sodium-chloride").pk,
        ),
    )
    ha = product(caller, clinic, f"{prefix}HA 2 mL", "hyaluronic-acid", "2", multi=False, low=3)
    vitc = product(caller, clinic, f"{prefix}Vitamin C 10 mL", "vitamin-c", "10", multi=True)
    saline = product(caller, clinic, f"{prefix}Saline 10 mL", "sodium-chloride", "10", multi=False)

    def receive(item: Product, number: str, vials: int) -> Lot:
        return services.lot_receive(
            caller=caller,
            product=item,
            number=f"{prefix}{number}",
            expires_on=today + timedelta(days=365),
            received_on=today,
            received_vials=vials,
        )

    ha_lot = receive(ha, "HA-1", vials)
    vitc_lot = receive(vitc, "VC-1", 2)
    saline_lot = receive(saline, "NS-1", vials)
    vial = services.vial_open(caller=caller, lot=vitc_lot, now=timezone.now() - timedelta(minutes=5))
    return Setup(
        clinic=clinic,
        director=director,
        formula=formula,
        version=services.current_version(formula),
        ha=ha,
        vitc=vitc,
        saline=saline,
        ha_lot=ha_lot,
        vitc_lot=vitc_lot,
        saline_lot=saline_lot,
        vial=vial,
        today=today,
    )
