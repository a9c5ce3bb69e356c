"""Text normalisation shared by every search."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Lower-case, accent-free form used for indexed prefix search ("Élodie" → "elodie")."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (for a range scan)."""
    return prefix + "\U0010ffff"
