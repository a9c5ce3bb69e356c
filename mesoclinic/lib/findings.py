"""A rule's answer (domain.md): what it found, how serious, which rule, in plain language, and on what basis.

Shared by every app's rules.py (screening, formulary, the check-in gate…) so that findings from different
rules can be shown, acknowledged and stored the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["block", "warn", "info"]
SEVERITY_ORDER: dict[Severity, int] = {"block": 0, "warn": 1, "info": 2}


@dataclass(frozen=True)
class Finding:
    code: str  # e.g. "nsaid-washout"
    severity: Severity
    rule: str  # the domain.md id, e.g. "R-PRE-NSAID"
    message: str  # plain language, translated
    source: str  # seed file or literature


def blocks(findings: list[Finding]) -> bool:
    return any(finding.severity == "block" for finding in findings)


def warns(findings: list[Finding]) -> bool:
    return any(finding.severity == "warn" for finding in findings)
