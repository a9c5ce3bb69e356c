"""The role × operation matrix the apps' authorisation tests share: every page and API call, asked by every
role about its own patient, another patient of the clinic and another clinic's patient (one world, each call
rolled back)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver

from tests.conftest import ALL_ROLES, World, client_for

ALLOWED_STATUSES = {200, 201, 302, 409, 422}  # authorised: done, or refused for what was asked

Target = TypeVar("Target")


@dataclass(frozen=True)
class Operation(Generic[Target]):
    name: str
    method: str
    url: Callable[[Target], str]
    allowed: frozenset[str]  # roles, and "patient-own" for the patient about their own record
    body: Callable[[Target], dict[str, Any]] | None = None
    json_body: bool = False
    patient_level: bool = True  # False: a clinic-level page (no record of a patient in the URL)


def call(client: Client, operation: Operation[Target], target: Target) -> int:
    """The status of one call, its writes rolled back so the world stays as built."""
    url = operation.url(target)
    body = operation.body(target) if operation.body else None
    with transaction.atomic():
        if operation.method == "get":
            response = client.get(url)
        elif operation.json_body:
            response = getattr(client, operation.method)(
                url, data=json.dumps(body), content_type="application/json"
            )
        else:
            response = getattr(client, operation.method)(url, data=body or {})
        transaction.set_rollback(True)
    return int(response.status_code)


def expected(role: str, operation: Operation[Target], which: str) -> set[int] | None:
    """The statuses that may answer (None: any authorised answer)."""
    if operation.patient_level and which == "foreign":
        return {404}  # another clinic's record is never revealed, whatever the role
    if role == "patient":
        if not operation.patient_level:
            return None if "patient-own" in operation.allowed else {403, 404}
        if which == "own":
            return None if "patient-own" in operation.allowed else {403}
        return {404}
    if role in operation.allowed:
        return None
    return {403, 404} if not operation.patient_level else {403}


def matrix_problems(
    world: World, operations: Sequence[Operation[Target]], targets: Mapping[str, Target]
) -> list[str]:
    """Every call whose answer is not what the role may get; empty when the policy holds."""
    wrong: list[str] = []
    for role in ALL_ROLES:
        client = client_for(world.users[role])
        for operation in operations:
            for which in ("own", "other", "foreign") if operation.patient_level else ("own",):
                status = call(client, operation, targets[which])
                allowed = expected(role, operation, which)
                if allowed is None:
                    if status not in ALLOWED_STATUSES:
                        wrong.append(f"{role} {operation.name}/{which}: {status}, expected to be allowed")
                elif status not in allowed:
                    wrong.append(f"{role} {operation.name}/{which}: {status}, expected {sorted(allowed)}")
    return wrong


def route_patterns(resolver: URLResolver, prefix: str = "") -> list[str]:
    """Every URL pattern under ``resolver``, with its prefixes (to check that the matrix misses none)."""
    found: list[str] = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            found.extend(route_patterns(entry, prefix + str(entry.pattern)))
        elif isinstance(entry, URLPattern):
            found.append(prefix + str(entry.pattern))
    return found
