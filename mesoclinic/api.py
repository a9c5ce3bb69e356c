"""The JSON API at /api/v1/: the routers of every app, one error format."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError
from ninja.errors import ValidationError as NinjaValidationError

from mesoclinic.accounts.api_auth import BearerTokenAuth, VerifiedSessionAuth
from mesoclinic.consent.api import router as consent_router
from mesoclinic.formulary.api import router as formulary_router
from mesoclinic.lib.findings import FindingsRefused
from mesoclinic.outcomes.api import router as outcomes_router
from mesoclinic.patients.api import router as patients_router
from mesoclinic.safety.api import router as safety_router
from mesoclinic.scheduling.api import router as scheduling_router
from mesoclinic.screening.api import router as screening_router
from mesoclinic.treatments.api import router as treatments_router

api = NinjaAPI(
    title="mesoclinic API",
    version="1",
    urls_namespace="api",
    auth=[BearerTokenAuth(), VerifiedSessionAuth()],
    docs_url="/docs",
)


def _field_name(location: tuple[Any, ...]) -> str:
    # ninja reports ("body", "payload", "date_of_birth"); clients want "date_of_birth".
    parts = [str(part) for part in location if part not in ("body", "payload", "query", "params", "path")]
    return ".".join(parts) or "body"


@api.exception_handler(NinjaValidationError)
def _invalid_input(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = [
        {"field": _field_name(tuple(error.get("loc", ()))), "message": error.get("msg", "")}
        for error in exc.errors
    ]
    return api.create_response(
        request, {"detail": _("Some fields are not valid."), "errors": errors}, status=422
    )


@api.exception_handler(ValidationError)
def _invalid_data(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    if hasattr(exc, "error_dict"):
        errors = [
            {"field": field, "message": message}
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
    else:
        errors = [{"field": "body", "message": message} for message in exc.messages]
    return api.create_response(
        request, {"detail": _("Some fields are not valid."), "errors": errors}, status=422
    )


@api.exception_handler(FindingsRefused)
def _refused(request: HttpRequest, exc: FindingsRefused) -> HttpResponse:
    return api.create_response(
        request,
        {"detail": exc.message, "findings": [finding.as_dict() for finding in exc.findings]},
        status=422,
    )


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return api.create_response(request, {"detail": _("You are not allowed to do this.")}, status=403)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": _("Not found.")}, status=404)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(request, {"detail": _("Sign in or send a valid bearer token.")}, status=401)


api.add_router("/", patients_router)
api.add_router("/", screening_router)
api.add_router("/", formulary_router)
api.add_router("/", treatments_router)
api.add_router("/", consent_router)
api.add_router("/", outcomes_router)
api.add_router("/", scheduling_router)
api.add_router("/", safety_router)
