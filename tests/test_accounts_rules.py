from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoclinic.accounts.rules import LicenceFacts, jurisdiction_covers, licence_findings

ON = date(2026, 11, 22)


@pytest.mark.parametrize(
    ("licences", "jurisdiction", "valid"),
    [
        ([LicenceFacts("US-NY", None, ON)], "US-NY", True),  # expires today: still valid today
        ([LicenceFacts("US-NY", None, ON - timedelta(days=1))], "US-NY", False),
        ([LicenceFacts("US-NY", ON, ON + timedelta(days=9))], "US-NY", True),  # starts today
        ([LicenceFacts("US-NY", ON + timedelta(days=1), ON + timedelta(days=9))], "US-NY", False),
        ([LicenceFacts("US-NJ", None, ON + timedelta(days=9))], "US-NY", False),
        ([LicenceFacts("US", None, ON + timedelta(days=9))], "US-NY", True),
        ([LicenceFacts("FR", None, ON + timedelta(days=9))], "FR", True),
        ([LicenceFacts("fr", None, ON + timedelta(days=9))], "FR", True),
        (
            [
                LicenceFacts("FR", None, ON - timedelta(days=9)),
                LicenceFacts("FR", None, ON + timedelta(days=9)),
            ],
            "FR",
            True,
        ),
        ([], "FR", False),
    ],
)
def test_licence_findings(licences: list[LicenceFacts], jurisdiction: str, valid: bool) -> None:
    findings = licence_findings(licences, jurisdiction=jurisdiction, on=ON)
    if valid:
        assert findings == []
    else:
        assert [(f.code, f.severity, f.rule) for f in findings] == [("licence-invalid", "block", "R-PROV")]
        assert jurisdiction in findings[0].message


def test_a_state_licence_does_not_cover_the_country() -> None:
    assert not jurisdiction_covers("US-NY", "US")
    assert not jurisdiction_covers("US-N", "US-NY")


@given(
    expires=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    on=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
)
@settings(max_examples=300)
def test_valid_exactly_until_the_expiry_date(expires: date, on: date) -> None:
    findings = licence_findings([LicenceFacts("FR", None, expires)], jurisdiction="FR", on=on)
    assert (findings == []) == (on <= expires)
