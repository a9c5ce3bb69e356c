"""The only code that writes audit rows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models, transaction
from django.http import HttpRequest
from django.utils import timezone

from mesoclinic.audit.chain import GENESIS_HASH, ChainProblem, ChainRow, row_digest, verify_chain
from mesoclinic.audit.models import Action, AuditEvent, AuditHead

if TYPE_CHECKING:
    from mesoclinic.accounts.models import User


def _key() -> bytes:
    return settings.AUDIT_KEY.encode("utf-8")


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    proxies: int = getattr(settings, "AXES_IPWARE_PROXY_COUNT", 0)
    if proxies:
        header = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
        forwarded = [part.strip() for part in header.split(",") if part.strip()]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    addr = request.META.get("REMOTE_ADDR")
    return str(addr) if addr else None


@dataclass(frozen=True)
class Actor:
    """Who did it, as the audit row records it."""

    user_id: int | None
    username: str
    role: str
    ip: str | None

    @classmethod
    def anonymous(cls, request: HttpRequest | None = None, username: str = "") -> Actor:
        return cls(user_id=None, username=username, role="", ip=client_ip(request))

    @classmethod
    def of(cls, user: User, role: str, request: HttpRequest | None = None) -> Actor:
        return cls(user_id=user.pk, username=user.get_username(), role=role, ip=client_ip(request))


def audit_record(
    *,
    actor: Actor,
    action: Action,
    clinic_id: int | None = None,
    patient_id: int | None = None,
    obj: models.Model | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain. Call it inside the transaction of the write it records, so that
    neither lands without the other."""
    with transaction.atomic():
        head, _ = AuditHead.objects.select_for_update().get_or_create(id=1, defaults={"hash": GENESIS_HASH})
        row = ChainRow(
            seq=head.seq + 1,
            at=timezone.now(),
            user_id=actor.user_id,
            username=actor.username,
            role=actor.role,
            clinic_id=clinic_id,
            patient_id=patient_id,
            action=str(action),
            object_type=obj._meta.label_lower if obj is not None else "",
            object_id=str(obj.pk) if obj is not None else "",
            ip=actor.ip,
            detail=dict(detail or {}),
            prev_hash=head.hash,
        )
        digest = row_digest(_key(), row)
        event = AuditEvent.objects.create(
            seq=row.seq,
            at=row.at,
            user_id=row.user_id,
            username=row.username,
            role=row.role,
            clinic_id=row.clinic_id,
            patient_id=row.patient_id,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            ip=row.ip,
            detail=row.detail,
            prev_hash=row.prev_hash,
            hash=digest,
        )
        AuditHead.objects.filter(id=1).update(seq=row.seq, hash=digest)
    return event


def _as_chain_row(event: AuditEvent) -> ChainRow:
    return ChainRow(
        seq=event.seq,
        at=event.at,
        user_id=event.user_id,
        username=event.username,
        role=event.role,
        clinic_id=event.clinic_id,
        patient_id=event.patient_id,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        ip=event.ip,
        detail=event.detail,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def audit_problems() -> list[ChainProblem]:
    """Every break in the stored chain (empty when intact). Reads in one snapshot."""
    with transaction.atomic():
        head = AuditHead.objects.filter(id=1).first()
        rows: Iterator[ChainRow] = (
            _as_chain_row(event) for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=5000)
        )
        return list(verify_chain(_key(), rows, head.seq if head else 0, head.hash if head else GENESIS_HASH))
