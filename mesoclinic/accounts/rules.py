"""Pure rules about staff (R-PROV): plain values in, findings out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.utils.formats import date_format
from django.utils.translation import gettext as _

from mesoclinic.lib.findings import Finding


@dataclass(frozen=True)
class LicenceFacts:
    jurisdiction: str  # "US-NY", "FR"
    valid_from: date | None
    expires_on: date


def jurisdiction_covers(licence_jurisdiction: str, clinic_jurisdiction: str) -> bool:
    """A national licence ("US") covers its subdivisions ("US-NY"); a state licence covers only its state."""
    licence = licence_jurisdiction.upper()
    clinic = clinic_jurisdiction.upper()
    return clinic == licence or clinic.startswith(licence + "-")


def licence_findings(licences: Iterable[LicenceFacts], *, jurisdiction: str, on: date) -> list[Finding]:
    """R-PROV: injections are given by a licensed provider; charting without a current licence in the
    clinic's jurisdiction on the session date is blocked."""
    for licence in licences:
        started = licence.valid_from is None or licence.valid_from <= on
        if started and on <= licence.expires_on and jurisdiction_covers(licence.jurisdiction, jurisdiction):
            return []
    return [
        Finding(
            code="licence-invalid",
            severity="block",
            rule="R-PROV",
            message=_("No current licence to inject in %(jurisdiction)s on %(date)s.")
            % {"jurisdiction": jurisdiction, "date": date_format(on, "SHORT_DATE_FORMAT")},
            source="seeds 001, 003: injections by a licensed medical provider",
        )
    ]
