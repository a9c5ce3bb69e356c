"""The formulary API's shapes. Input limits are the columns' (digits, decimals, lengths, 64-bit ids), so
that anything a client can send is either stored exactly or refused with a 422 naming the field; the
services check the same limits again (and the meaning: positive, dates, caps) for every caller."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import ConfigDict, Field, field_validator

from mesoclinic.formulary.models import Indication
from mesoclinic.formulary.rules import (
    MAX_BEYOND_USE_HOURS,
    MAX_VIALS_PER_LOT,
    STRENGTH_LIMITS,
    VOLUME_LIMITS,
)
from mesoclinic.lib.ids import MAX_ID

Unit = Literal["mg/mL", "mcg/mL", "IU/mL", "U/mL", "%", "mL"]
MovementKind = Literal["wasted", "returned", "adjusted"]
RegulatoryStatusValue = Literal["approved", "approved-other-indication", "not-approved", "banned"]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Strength = Annotated[
    Decimal, Field(max_digits=STRENGTH_LIMITS.max_digits, decimal_places=STRENGTH_LIMITS.decimal_places)
]
Volume = Annotated[
    Decimal, Field(max_digits=VOLUME_LIMITS.max_digits, decimal_places=VOLUME_LIMITS.decimal_places)
]
Code = Annotated[str, Field(max_length=60)]


def _no_nul(value: Any) -> Any:
    """PostgreSQL cannot store a NUL character in text: refused at the edge, in any string of any field."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(_("This text contains a character that is not allowed (NUL)."))
    if isinstance(value, list):
        for item in value:
            _no_nul(item)
    return value


class In(Schema):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _text_is_storable(cls, value: Any) -> Any:
        return _no_nul(value)


class FormulaFindingOut(Schema):
    code: str
    severity: str
    rule: str
    message: str
    source: str


class AllergyGroupOut(Schema):
    code: str
    name: str


class CautionOut(Schema):
    id: int
    group: str
    note: str
    source: str


class StatusOut(Schema):
    id: int
    clinic_id: int | None = Field(
        description="null: a seeded row; else the clinic's own, which overrides it."
    )
    ingredient_id: int | None = Field(description="null: about mesotherapy mixtures as such.")
    jurisdiction: str
    status: str
    indications: list[str]
    use: str
    source: str


class LimitOut(Schema):
    id: int
    label: str
    concentration: Decimal
    concentration_unit: str
    max_volume_per_injection_ml: Decimal | None
    min_injection_spacing_cm: Decimal | None
    max_injections_per_session: int | None
    max_volume_per_session_ml: Decimal | None
    min_interval_days: int | None
    max_sessions: int | None
    source: str


class IngredientOut(Schema):
    id: int
    clinic_id: int | None
    code: str
    name: str
    ingredient_class: str
    description: str
    teratogen: bool
    source: str
    allergy_groups: list[str]
    cautions: list[CautionOut]
    statuses: list[StatusOut]
    limits: list[LimitOut]


class IngredientIn(In):
    code: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9-]+$")
    name: str = Field(min_length=1, max_length=120)
    ingredient_class: str = Field(max_length=20)
    description: str = Field(default="", max_length=2000)
    teratogen: bool = False
    allergy_groups: list[Code] = Field(default_factory=list, max_length=20)
    source: str = Field(default="", max_length=300)
    clinic_id: Id | None = None


class RegulatoryStatusIn(In):
    ingredient_id: Id | None = Field(default=None, description="null: mesotherapy mixtures as such.")
    jurisdiction: str = Field(min_length=2, max_length=10, description='"FR", "US", "US-NY"…')
    status: RegulatoryStatusValue
    indications: list[Code] = Field(
        default_factory=list, max_length=len(Indication.values), description="empty: any use"
    )
    use: str = Field(min_length=1, max_length=300)
    source: str = Field(min_length=1, max_length=300)
    clinic_id: Id | None = None


class CautionIn(In):
    group: Code = Field(description="An allergy group code.")
    note: str = Field(min_length=1, max_length=300)
    source: str = Field(min_length=1, max_length=300)


class LimitIn(In):
    label: str = Field(min_length=1, max_length=200)
    concentration: Strength
    concentration_unit: Unit
    max_volume_per_injection_ml: Volume | None = None
    min_injection_spacing_cm: Annotated[Decimal, Field(max_digits=5, decimal_places=2)] | None = None
    max_injections_per_session: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_volume_per_session_ml: Volume | None = None
    min_interval_days: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_sessions: Annotated[int, Field(ge=1, le=10_000)] | None = None
    source: str = Field(min_length=1, max_length=300)


class ComponentSchema(In):
    ingredient_id: Id
    concentration: Strength
    unit: Unit


class FormulaContentIn(In):
    components: list[ComponentSchema] = Field(max_length=40)
    total_volume_ml: Volume
    indications: list[Code] = Field(max_length=len(Indication.values))
    diluent_id: Id | None = None
    preparation_notes: str = Field(default="", max_length=4000)


class FormulaIn(FormulaContentIn):
    name: str = Field(min_length=1, max_length=200)
    clinic_id: Id | None = None


class ComponentOut(Schema):
    ingredient_id: int
    ingredient: str
    concentration: Decimal
    unit: str


class VersionOut(Schema):
    id: int
    number: int
    diluent_id: int | None
    total_volume_ml: Decimal
    indications: list[str]
    preparation_notes: str
    created_at: datetime
    used: bool
    components: list[ComponentOut]


class FormulaOut(Schema):
    id: int
    clinic_id: int
    name: str
    current_version: VersionOut
    versions: list[int]
    findings: list[FormulaFindingOut]


class FormulaSummary(Schema):
    id: int
    name: str
    current_version_id: int
    current_version: int


class ProductComponentSchema(In):
    ingredient_id: Id
    strength: Strength
    unit: Unit


class ProductIn(In):
    name: str = Field(min_length=1, max_length=200)
    supplier: str = Field(min_length=1, max_length=200)
    vial_volume_ml: Volume
    multi_dose: bool = False
    beyond_use_hours: int = Field(
        ge=1, le=MAX_BEYOND_USE_HOURS, description="How long an opened vial may be used (at most a year)."
    )
    low_stock_vials: int = Field(default=0, ge=0, le=100_000)
    components: list[ProductComponentSchema] = Field(max_length=20)
    clinic_id: Id | None = None


class ProductOut(Schema):
    id: int
    clinic_id: int
    name: str
    supplier: str
    vial_volume_ml: Decimal
    multi_dose: bool
    beyond_use_hours: int
    low_stock_vials: int
    components: list[ComponentOut]


class LotIn(In):
    product_id: Id
    number: str = Field(min_length=1, max_length=60)
    expires_on: date
    received_on: date | None = None
    received_vials: int = Field(le=MAX_VIALS_PER_LOT)


class LotOut(Schema):
    id: int
    product_id: int
    product: str
    number: str
    expires_on: date
    received_on: date
    received_vials: int
    stock_ml: Decimal
    recalled_at: datetime | None
    recall_reason: str


class MovementIn(In):
    kind: MovementKind
    quantity_ml: Volume
    reason: str = Field(default="", max_length=300)


class MovementOut(Schema):
    id: int
    lot_id: int
    vial_id: int | None
    kind: str
    quantity_ml: Decimal
    reason: str
    preparation_id: int | None
    patient_id: int | None = Field(description="The patient of a direct administration.")
    at: datetime


class VialOut(Schema):
    id: int
    lot_id: int
    opened_at: datetime
    beyond_use_at: datetime
    closed_at: datetime | None
    remaining_ml: Decimal


class VialCloseIn(In):
    reason: str = Field(default="", max_length=300)


class RecallIn(In):
    reason: str = Field(min_length=1, max_length=2000)


class PreparationLineIn(In):
    lot_id: Id
    volume_ml: Volume
    vial_id: Id | None = None


class PreparationIn(In):
    patient_id: Id
    formula_version_id: Id = Field(description="The current version of a formula in use.")
    lines: list[PreparationLineIn] = Field(max_length=40)
    notes: str = Field(default="", max_length=2000)


class LineOut(Schema):
    lot_id: int
    lot_number: str
    vial_id: int | None
    volume_ml: Decimal


class PreparationOut(Schema):
    id: int
    patient_id: int
    formula_version_id: int
    prepared_at: datetime
    total_volume_ml: Decimal
    notes: str | None = Field(description="Clinical notes: null for roles that may not read them.")
    lines: list[LineOut]


class ExposedPreparationOut(Schema):
    id: int
    prepared_at: datetime
    volume_ml: Decimal
    formula: str
    version: int


class ExposedAdministrationOut(Schema):
    id: int
    administered_at: datetime
    volume_ml: Decimal
    product: str


class ExposedPatientOut(Schema):
    patient_id: int
    record_number: str
    given_name: str
    family_name: str
    date_of_birth: date
    email: str
    phone: str
    address_line: str
    city: str
    postal_code: str
    preferred_language: str
    preparations: list[ExposedPreparationOut]
    administrations: list[ExposedAdministrationOut]
    message: str


class PageParams(Schema):
    limit: int = Field(default=100, ge=1, le=1000, description="Patients per page.")
    offset: int = Field(default=0, ge=0, le=10_000_000)


class ExposureOut(Schema):
    lot: LotOut
    patient_count: int
    preparation_count: int
    administration_count: int
    patients: list[ExposedPatientOut]


class ReceivedLotOut(Schema):
    kind: Literal["preparation", "administration"]
    lot_id: int
    lot_number: str
    product: str
    expires_on: date
    recalled: bool
    at: datetime
    volume_ml: Decimal
    preparation_id: int | None
    administration_id: int | None
    formula: str


class PatientLotsOut(Schema):
    patient_id: int
    items: list[ReceivedLotOut]


class LotStockOut(Schema):
    lot_id: int
    number: str
    expires_on: date
    stock_ml: Decimal
    expired: bool
    expiring_soon: bool
    recalled: bool


class ProductStockOut(Schema):
    product_id: int
    product: str
    stock_ml: Decimal
    usable_vials: Decimal
    low_stock_vials: int
    low: bool
    lots: list[LotStockOut]


class StockOut(Schema):
    today: date
    products: list[ProductStockOut]
    open_vials: list[VialOut]
