"""Primary keys as they arrive from a URL, a form or a JSON body."""

from __future__ import annotations

from typing import TypeGuard

from django.http import Http404
from django.utils.translation import gettext as _

MAX_ID = 2**63 - 1  # the largest key a BigAutoField holds; a larger number would overflow the query


def is_valid_id(value: object) -> TypeGuard[int]:
    """Whether this can be a primary key at all (a positive 64-bit integer, not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def id_or_404(value: int) -> int:
    """An id the database can hold, else a 404 like any unknown id."""
    if not is_valid_id(value):
        raise Http404(_("Not found."))
    return value
