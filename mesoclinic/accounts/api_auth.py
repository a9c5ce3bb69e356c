from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer, SessionAuth

from mesoclinic.accounts.models import ApiToken, hash_token

_TOUCH_AFTER = timedelta(minutes=5)


class BearerTokenAuth(HttpBearer):
    """``Authorization: Bearer mc_…``: looked up by its SHA-256, never stored in clear."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        if not token.startswith(ApiToken.PREFIX) or len(token) > 100:
            return None
        found = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=hash_token(token), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if found is None:
            return None
        now = timezone.now()
        if found.last_used_at is None or now - found.last_used_at > _TOUCH_AFTER:
            ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
        request.user = found.user
        return found.user


class VerifiedSessionAuth(SessionAuth):
    """The browser's session, with CSRF on unsafe methods (ninja's SessionAuth does that check)."""
