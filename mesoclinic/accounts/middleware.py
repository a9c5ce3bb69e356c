from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _

Handler = Callable[[HttpRequest], HttpResponse]

AUTH_AT = "auth_at"
SEEN_AT = "seen_at"
MFA_NEEDED = "mfa_needed"
# Refresh the idle clock at most this often, so that reads do not write the session row every request.
_TOUCH_EVERY_SECONDS = 30


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


class SessionTimeoutMiddleware:
    """Ends a session server-side after SESSION_IDLE_SECONDS without a request or SESSION_ABSOLUTE_SECONDS
    after sign-in, whichever comes first (targets.md #9)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and AUTH_AT in request.session:
            now = time.time()
            auth_at = float(request.session[AUTH_AT])
            seen_at = float(request.session.get(SEEN_AT, auth_at))
            if (
                now - seen_at > settings.SESSION_IDLE_SECONDS
                or now - auth_at > settings.SESSION_ABSOLUTE_SECONDS
            ):
                logout(request)
                if _is_api(request):
                    return JsonResponse({"detail": _("Your session has expired. Sign in again.")}, status=401)
                messages.info(request, _("Your session has expired. Sign in again."))
                return redirect_to_login(request.get_full_path())
            if now - seen_at > _TOUCH_EVERY_SECONDS:
                request.session[SEEN_AT] = now
        return self.get_response(request)


_MFA_EXEMPT_PREFIXES = ("/accounts/mfa/", "/accounts/logout/", "/static/", "/i18n/")


class MfaRequiredMiddleware:
    """Staff who have an authenticator, or whose role requires one, must pass it before anything else."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and request.session.get(MFA_NEEDED)
            and not user.is_verified()  # type: ignore[attr-defined]
            and not request.path.startswith(_MFA_EXEMPT_PREFIXES)
        ):
            if _is_api(request):
                return JsonResponse({"detail": _("Two-factor verification is required.")}, status=403)
            return redirect("accounts:mfa")
        return self.get_response(request)


class NoStoreMiddleware:
    """Nothing seen by a signed-in user, and no API answer, is kept by a browser or proxy (targets.md #12)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if _is_api(request) or request.user.is_authenticated or request.path.startswith("/accounts/"):
            patch_cache_control(response, no_store=True, private=True)
        return response
