from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field, StrictInt, StrictStr

from mesoclinic.consent.rules import MAX_TEXT, MAX_TYPED_NAME

Language = Literal["en", "fr"]
Section = Annotated[StrictStr, Field(min_length=1, max_length=MAX_TEXT)]
Sha256 = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]
Price = Annotated[Decimal, Field(gt=0, le=Decimal("99999999.99"), max_digits=10, decimal_places=2)]


class In(Schema):
    model_config = ConfigDict(extra="forbid")


class FindingOut(Schema):
    key: str
    code: str
    severity: str
    rule: str
    message: str
    source: str


# --- settings ----------------------------------------------------------------------------------------------


class PriceSchema(In):
    indication: StrictStr = Field(
        default="", max_length=30, description='An indication code; "" = the default.'
    )
    price_per_session: Price


class TermsIn(In):
    clinic_id: StrictInt | None = None
    validity_months: StrictInt = Field(ge=1, le=60)
    prices: list[PriceSchema] = Field(default_factory=list, max_length=30)


class TermsOut(Schema):
    clinic_id: int
    currency: str
    validity_months: int
    prices: list[PriceSchema]


class ClinicParams(Schema):
    clinic_id: int | None = None


# --- content ------------------------------------------------------------------------------------------------


class LibraryParams(Schema):
    clinic_id: int | None = None
    language: Language = "en"
    indication: str = Field(default="", max_length=30)


class TemplateVersionOut(Schema):
    id: int
    number: int
    title: str
    procedure: str
    risks: str
    evidence: str
    declaration: str
    source: str
    created_at: datetime


class TemplateOut(Schema):
    id: int
    indication: str
    jurisdiction: str
    language: str
    clinic_owned: bool
    copied_from: int | None
    version: TemplateVersionOut


class TemplateVersionIn(In):
    clinic_id: StrictInt | None = None
    indication: StrictStr | None = Field(default=None, max_length=30)
    jurisdiction: StrictStr | None = Field(default=None, max_length=10)
    title: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    procedure: Section
    risks: Section
    evidence: Section
    declaration: Section
    source: StrictStr = Field(default="", max_length=500)


class ArticleOut(Schema):
    id: int
    topic: str
    indication: str
    language: str
    clinic_owned: bool
    version_id: int
    version: int
    title: str
    text: str
    source: str


class ArticleVersionIn(In):
    clinic_id: StrictInt | None = None
    indication: StrictStr | None = Field(default=None, max_length=30)
    title: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    body: Section
    source: StrictStr = Field(default="", max_length=500)


# --- consents -----------------------------------------------------------------------------------------------


class DocumentParams(Schema):
    language: Language | None = None


class DocumentOut(Schema):
    plan: int
    patient: int
    language: str
    template_version_id: int
    template_version: int
    text: str
    text_sha256: str
    signed_on: date
    valid_until: date
    can_sign: bool
    refusals: list[FindingOut]


class SignIn(In):
    patient_id: StrictInt = Field(description="Whose consent this is: must be the plan's patient.")
    template_version_id: StrictInt = Field(description="The template version of the text that was shown.")
    text_sha256: Sha256 = Field(description="SHA-256 of the text that was shown (from the document call).")
    language: Language | None = None
    typed_name: StrictStr = Field(max_length=MAX_TYPED_NAME)
    signature: StrictStr = Field(
        max_length=500_000,
        description="The drawn signature: a PNG, as base64 or a data:image/png;base64 URL.",
    )


class WithdrawIn(In):
    reason: StrictStr = Field(default="", max_length=1000)


class ConsentOut(Schema):
    id: int
    plan: int
    patient: int
    state: str
    language: str
    template_version_id: int
    template_version: int
    text: str
    text_sha256: str
    covers: dict[str, Any]
    changes: list[str]
    signed_at: datetime
    signed_on: date
    valid_until: date
    typed_name: str
    signed_via: str
    signed_ip: str | None
    signature_sha256: str
    countersigned_at: datetime | None
    countersigned_by: int | None
    pdf_sha256: str | None
    withdrawn_at: datetime | None
    withdrawal_reason: str


class PlanConsentsOut(Schema):
    plan: int
    patient: int
    plan_status: str
    valid: bool
    can_sign: bool
    gate: list[FindingOut]
    consents: list[ConsentOut]
