"""Pure rules about the basic patient record: plain values in, messages out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.utils.translation import gettext as _

from mesoclinic.lib.text import fold as fold_text

OLDEST_PLAUSIBLE_BIRTH = date(1900, 1, 1)
RECORD_NUMBER_FORMAT = "P-{:06d}"
_RECORD_NUMBER_RE = re.compile(r"^(?:P-?)?(\d{1,9})$", re.IGNORECASE)
_ISO_DATE_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DMY_DATE_RE = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")


def birth_date_problem(date_of_birth: date, today: date) -> str | None:
    """Why a date of birth cannot be right, or None."""
    if date_of_birth > today:
        return _("The date of birth is in the future.")
    if date_of_birth < OLDEST_PLAUSIBLE_BIRTH:
        return _("The date of birth is before 1900.")
    return None


def format_record_number(number: int) -> str:
    return RECORD_NUMBER_FORMAT.format(number)


@dataclass(frozen=True)
class SearchQuery:
    """What a search box string means: a record number, a date of birth, or name prefixes."""

    record_number: str | None = None
    date_of_birth: date | None = None
    name_prefixes: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self.record_number is None and self.date_of_birth is None and not self.name_prefixes


def parse_search(text: str) -> SearchQuery:
    """Interpret the search box. Dates are ISO (2001-02-03) or day first (03/02/2001)."""
    cleaned = text.strip()
    if not cleaned:
        return SearchQuery()
    number = _RECORD_NUMBER_RE.match(cleaned)
    if number:
        return SearchQuery(record_number=format_record_number(int(number.group(1))))
    for pattern, order in ((_ISO_DATE_RE, (0, 1, 2)), (_DMY_DATE_RE, (2, 1, 0))):
        match = pattern.match(cleaned)
        if match:
            parts = [int(group) for group in match.groups()]
            try:
                return SearchQuery(date_of_birth=date(parts[order[0]], parts[order[1]], parts[order[2]]))
            except ValueError:
                return SearchQuery(name_prefixes=(fold_text(cleaned),))
    return SearchQuery(name_prefixes=tuple(fold_text(cleaned).split()[:4]))
