from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

Sex = Literal["female", "male", "other", "unknown"]
Language = Literal["en", "fr"]


class PatientIn(Schema):
    model_config = ConfigDict(extra="forbid")

    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date
    sex: Sex
    email: str = Field(default="", max_length=254)
    phone: str = Field(default="", max_length=40)
    address_line: str = Field(default="", max_length=200)
    city: str = Field(default="", max_length=100)
    postal_code: str = Field(default="", max_length=20)
    preferred_language: Language = "en"
    clinic_id: int | None = Field(default=None, description="Required when you work in more than one clinic.")


class PatientPatch(Schema):
    model_config = ConfigDict(extra="forbid")

    given_name: str | None = Field(default=None, min_length=1, max_length=100)
    family_name: str | None = Field(default=None, min_length=1, max_length=100)
    date_of_birth: date | None = None
    sex: Sex | None = None
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    address_line: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    preferred_language: Language | None = None


class PatientOut(Schema):
    id: int
    clinic_id: int
    record_number: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str
    email: str
    phone: str
    address_line: str
    city: str
    postal_code: str
    preferred_language: str
    created_at: datetime
    updated_at: datetime


class PatientPage(Schema):
    count: int
    items: list[PatientOut]


class SearchParams(Schema):
    q: str = Field(default="", max_length=100, description="Name prefix(es), record number or date of birth.")
    clinic_id: int | None = None
    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)
