"""Audit receivers for sign-ins and privilege changes, wherever they happen (views, admin, shell)."""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from django.http import HttpRequest

from mesoclinic.accounts import middleware
from mesoclinic.accounts.models import MFA_REQUIRED_ROLES, Membership, User
from mesoclinic.audit.models import Action
from mesoclinic.audit.services import Actor, audit_record, client_ip
from mesoclinic.lib.current import current_request


def _request_actor() -> Actor:
    request = current_request()
    if request is None:
        return Actor(user_id=None, username="system", role="", ip=None)
    user = request.user if hasattr(request, "user") else None
    if user is None or not user.is_authenticated:
        return Actor.anonymous(request)
    return Actor(user_id=user.pk, username=user.get_username(), role="", ip=client_ip(request))


def mfa_needed(user: User) -> bool:
    from django_otp import user_has_device

    if user_has_device(user, confirmed=True):
        return True
    return Membership.objects.filter(user=user, is_active=True, role__in=list(MFA_REQUIRED_ROLES)).exists()


@receiver(user_logged_in)
def _on_login(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        now = time.time()
        request.session[middleware.AUTH_AT] = now
        request.session[middleware.SEEN_AT] = now
        request.session[middleware.MFA_NEEDED] = mfa_needed(user)
    audit_record(
        actor=Actor(user_id=user.pk, username=user.get_username(), role="", ip=client_ip(request)),
        action=Action.LOGIN,
    )


@receiver(user_logged_out)
def _on_logout(sender: Any, request: HttpRequest | None, user: User | None, **kwargs: Any) -> None:
    if user is not None:
        audit_record(
            actor=Actor(user_id=user.pk, username=user.get_username(), role="", ip=client_ip(request)),
            action=Action.LOGOUT,
        )


@receiver(user_login_failed)
def _on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username", ""))[:150]
    audit_record(actor=Actor.anonymous(request, username=username), action=Action.LOGIN_FAILED)


@receiver(pre_save, sender=Membership)
def _remember_membership(sender: Any, instance: Membership, **kwargs: Any) -> None:
    previous = (
        Membership.objects.filter(pk=instance.pk).values("role", "is_active").first() if instance.pk else None
    )
    instance._previous = previous  # type: ignore[attr-defined]


@receiver(post_save, sender=Membership)
def _on_membership_saved(sender: Any, instance: Membership, created: bool, **kwargs: Any) -> None:
    previous = getattr(instance, "_previous", None)
    if created:
        action = Action.PRIVILEGE_GRANT
    elif previous and (previous["role"], previous["is_active"]) == (instance.role, instance.is_active):
        return
    else:
        action = Action.PRIVILEGE_CHANGE if instance.is_active else Action.PRIVILEGE_REVOKE
    audit_record(
        actor=_request_actor(),
        action=action,
        clinic_id=instance.clinic_id,
        obj=instance,
        detail={
            "user": instance.user_id,
            "role": instance.role,
            "active": instance.is_active,
            "previous": previous,
        },
    )


@receiver(post_delete, sender=Membership)
def _on_membership_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    audit_record(
        actor=_request_actor(),
        action=Action.PRIVILEGE_REVOKE,
        clinic_id=instance.clinic_id,
        detail={"user": instance.user_id, "role": instance.role, "membership": instance.pk, "deleted": True},
    )


_ACCOUNT_FLAGS = ("is_active", "is_staff", "is_superuser")


@receiver(pre_save, sender=User)
def _remember_user_flags(sender: Any, instance: User, **kwargs: Any) -> None:
    instance._previous_flags = (  # type: ignore[attr-defined]
        User.objects.filter(pk=instance.pk).values(*_ACCOUNT_FLAGS).first() if instance.pk else None
    )


@receiver(post_save, sender=User)
def _on_user_saved(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    previous = getattr(instance, "_previous_flags", None)
    current = {flag: getattr(instance, flag) for flag in _ACCOUNT_FLAGS}
    if created:
        if instance.is_staff or instance.is_superuser:
            audit_record(actor=_request_actor(), action=Action.PRIVILEGE_GRANT, obj=instance, detail=current)
        return
    if previous is not None and previous != current:
        changed = sorted(flag for flag in _ACCOUNT_FLAGS if previous[flag] != current[flag])
        audit_record(
            actor=_request_actor(),
            action=Action.ACCOUNT_CHANGE,
            obj=instance,
            detail={"changed": changed, "now": current},
        )
        if "is_active" in changed and not instance.is_active:
            _end_sessions(instance)


def _end_sessions(user: User) -> None:
    """A disabled account loses every session at once, server-side (targets.md #9)."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    user_id = str(user.pk)
    doomed = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get("_auth_user_id") == user_id
    ]
    Session.objects.filter(pk__in=doomed).delete()
