from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

Unit = Literal["mg/mL", "mcg/mL", "IU/mL", "U/mL", "%", "mL"]
MovementKind = Literal["wasted", "returned", "adjusted"]


class In(Schema):
    model_config = ConfigDict(extra="forbid")


class FindingOut(Schema):
    code: str
    severity: str
    rule: str
    message: str
    source: str


class AllergyGroupOut(Schema):
    code: str
    name: str


class CautionOut(Schema):
    group: str
    note: str
    source: str


class StatusOut(Schema):
    jurisdiction: str
    status: str
    indications: list[str]
    use: str
    source: str


class LimitOut(Schema):
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
    ingredient_class: str
    description: str = Field(default="", max_length=2000)
    teratogen: bool = False
    allergy_groups: list[str] = Field(default_factory=list, max_length=20)
    source: str = Field(default="", max_length=300)
    clinic_id: int | None = None


class ComponentSchema(In):
    ingredient_id: int
    concentration: Decimal
    unit: Unit


class FormulaContentIn(In):
    components: list[ComponentSchema] = Field(max_length=40)
    total_volume_ml: Decimal
    indications: list[str] = Field(max_length=12)
    diluent_id: int | None = None
    preparation_notes: str = Field(default="", max_length=4000)


class FormulaIn(FormulaContentIn):
    name: str = Field(min_length=1, max_length=200)
    clinic_id: int | None = None


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
    findings: list[FindingOut]


class FormulaSummary(Schema):
    id: int
    name: str
    current_version_id: int
    current_version: int


class ProductComponentSchema(In):
    ingredient_id: int
    strength: Decimal
    unit: Unit


class ProductIn(In):
    name: str = Field(min_length=1, max_length=200)
    supplier: str = Field(min_length=1, max_length=200)
    vial_volume_ml: Decimal
    multi_dose: bool = False
    beyond_use_hours: int
    low_stock_vials: int = Field(default=0, ge=0, le=100_000)
    components: list[ProductComponentSchema] = Field(max_length=20)
    clinic_id: int | None = None


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
    product_id: int
    number: str = Field(min_length=1, max_length=60)
    expires_on: date
    received_on: date | None = None
    received_vials: int = Field(le=100_000)


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
    quantity_ml: Decimal
    reason: str = Field(default="", max_length=300)


class MovementOut(Schema):
    id: int
    lot_id: int
    vial_id: int | None
    kind: str
    quantity_ml: Decimal
    reason: str
    preparation_id: int | None
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


class LineIn(In):
    lot_id: int
    volume_ml: Decimal
    vial_id: int | None = None


class PreparationIn(In):
    patient_id: int
    formula_version_id: int
    lines: list[LineIn] = Field(max_length=40)
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
    notes: str
    lines: list[LineOut]


class ExposedPreparationOut(Schema):
    id: int
    prepared_at: datetime
    volume_ml: Decimal
    formula: str
    version: int


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
    message: str


class PageParams(Schema):
    limit: int = Field(default=100, ge=1, le=1000, description="Patients per page.")
    offset: int = Field(default=0, ge=0, le=10_000_000)


class ExposureOut(Schema):
    lot: LotOut
    patient_count: int
    preparation_count: int
    patients: list[ExposedPatientOut]


class ReceivedLotOut(Schema):
    lot_id: int
    lot_number: str
    product: str
    expires_on: date
    recalled: bool
    preparation_id: int
    prepared_at: datetime
    volume_ml: Decimal
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
