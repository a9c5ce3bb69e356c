"""A rule's answer (domain.md): what it found, how serious, which rule, in plain language, and on what basis.

Shared by every app's rules.py (screening, formulary, the check-in gate…) so that findings from different
rules can be shown, acknowledged and stored the same way.

``subject`` says what a finding is about when one rule can find the same thing more than once (the condition
code, the medicine as the patient wrote it, the ingredient code); ``key`` tells two such warnings apart, so
that each can be acknowledged with its own reason."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, cast

Severity = Literal["block", "warn", "info"]
SEVERITY_ORDER: dict[Severity, int] = {"block": 0, "warn": 1, "info": 2}
KEY_SEPARATOR = ":"


@dataclass(frozen=True)
class Finding:
    code: str  # e.g. "nsaid-washout"
    severity: Severity
    rule: str  # the domain.md id, e.g. "R-PRE-NSAID"
    message: str  # plain language, translated
    source: str  # seed file or literature
    subject: str = ""  # what it is about when a code can occur more than once, e.g. "Advil 200 mg"

    @property
    def key(self) -> str:
        """What an acknowledgement names: the code alone, or ``code:subject``."""
        return f"{self.code}{KEY_SEPARATOR}{self.subject}" if self.subject else self.code

    def as_dict(self) -> dict[str, str]:
        """As stored with a record (a session's gate, a signed review) and as the API answers it."""
        return {
            "key": self.key,
            "code": self.code,
            "severity": self.severity,
            "rule": self.rule,
            "message": self.message,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> Finding:
        key, code = data.get("key", ""), data["code"]
        subject = key[len(code) + 1 :] if key.startswith(code + KEY_SEPARATOR) else ""
        severity = cast(Severity, data["severity"])
        return cls(code, severity, data["rule"], data["message"], data["source"], subject=subject)


def blocks(findings: Iterable[Finding]) -> bool:
    return any(finding.severity == "block" for finding in findings)


def warns(findings: Iterable[Finding]) -> bool:
    return any(finding.severity == "warn" for finding in findings)


def warning_keys(findings: Iterable[Finding]) -> list[str]:
    """The distinct keys of the warnings, in order: what needs an acknowledgement with a reason."""
    return list(dict.fromkeys(finding.key for finding in findings if finding.severity == "warn"))


def resolve_acknowledgement_keys(
    findings: Iterable[Finding], given: Iterable[str]
) -> tuple[dict[str, str], list[str], list[str]]:
    """Map what a client acknowledged to warning keys. A key is taken as it is; a bare code stands for the
    one warning with that code (older clients send codes). Answers ``(given → key, unknown, ambiguous)``:
    names that match no warning, and bare codes that several warnings share."""
    warnings = [finding for finding in findings if finding.severity == "warn"]
    keys = {finding.key for finding in warnings}
    by_code: dict[str, set[str]] = {}
    for finding in warnings:
        by_code.setdefault(finding.code, set()).add(finding.key)
    resolved: dict[str, str] = {}
    unknown: list[str] = []
    ambiguous: list[str] = []
    for name in given:
        if name in keys:
            resolved[name] = name
        elif len(by_code.get(name, ())) == 1:
            resolved[name] = next(iter(by_code[name]))
        elif name in by_code:
            ambiguous.append(name)
        else:
            unknown.append(name)
    return resolved, unknown, ambiguous


class FindingsRefused(Exception):
    """A service refused an action because of its findings: a block, or a warning given no reason. The API
    answers 422 with the findings; a page shows them with a reason field for each warning."""

    def __init__(self, findings: list[Finding], message: str) -> None:
        super().__init__(message)
        self.findings = findings
        self.message = message
