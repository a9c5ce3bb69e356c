"""Who is acting: the user (for the policy) and how the audit row names them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.http import HttpRequest

from mesoclinic.accounts.policy import role_label
from mesoclinic.audit.services import Actor, client_ip

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from mesoclinic.accounts.models import User


@dataclass(frozen=True)
class Caller:
    user: User | AnonymousUser
    ip: str | None = None

    @classmethod
    def of(cls, request: HttpRequest) -> Caller:
        return cls(user=request.user, ip=client_ip(request))

    def actor(self, clinic_id: int | None) -> Actor:
        if not self.user.is_authenticated:
            return Actor(user_id=None, username="", role="", ip=self.ip)
        return Actor(
            user_id=self.user.pk,
            username=self.user.get_username(),
            role=role_label(self.user, clinic_id),
            ip=self.ip,
        )
