from __future__ import annotations

import base64
import io

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp import match_token, user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from mesoclinic.accounts.clinic_context import set_current_clinic
from mesoclinic.accounts.forms import ClinicSwitchForm, TokenForm
from mesoclinic.accounts.models import User
from mesoclinic.audit.models import Action
from mesoclinic.audit.services import Actor, audit_record, client_ip


def _actor(request: HttpRequest) -> Actor:
    user = request.user
    return Actor(user_id=user.pk, username=user.get_username(), role="", ip=client_ip(request))


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


def _qr_data_uri(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@login_required
def mfa(request: HttpRequest) -> HttpResponse:
    """Verify an enrolled authenticator, or enrol one (required for admins and medical directors)."""
    user = request.user
    if not isinstance(user, User):  # login_required makes this unreachable; it narrows the type
        return redirect("accounts:login")
    if user.is_verified():  # type: ignore[attr-defined]
        return redirect("home")
    enrolled = user_has_device(user, confirmed=True)
    device = None
    if not enrolled:
        device = TOTPDevice.objects.filter(user=user, confirmed=False).first() or TOTPDevice.objects.create(
            user=user, name="authenticator", confirmed=False
        )
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["token"]
        if device is None:
            matched = match_token(user, token)
        else:
            matched = device if device.verify_token(token) else None
        if matched is not None:
            with transaction.atomic():
                if not enrolled:
                    matched.confirmed = True
                    matched.save(update_fields=["confirmed"])
                    audit_record(actor=_actor(request), action=Action.MFA_ENROL, obj=matched)
                otp_login(request, matched)
            next_url = request.GET.get("next", "")
            if next_url and url_has_allowed_host_and_scheme(
                next_url, {request.get_host()}, request.is_secure()
            ):
                return redirect(next_url)
            return redirect("home")
        audit_record(actor=_actor(request), action=Action.MFA_FAILED)
        form.add_error("token", _("That code is not right or has expired. Try the current code."))
    context = {"form": form, "enrolled": enrolled}
    if device is not None:
        context["qr"] = _qr_data_uri(device.config_url)
        context["secret"] = base64.b32encode(device.bin_key).decode("ascii")
    return render(
        request,
        "accounts/mfa.html",
        context,
        status=200 if form.is_bound is False or form.is_valid() else 400,
    )


@require_POST
@login_required
def switch_clinic(request: HttpRequest) -> HttpResponseBase:
    form = ClinicSwitchForm(request.POST)
    if not form.is_valid() or not set_current_clinic(request, form.cleaned_data["clinic_id"]):
        messages.error(request, _("You do not work in that clinic."))
    return redirect("home")


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change_done")

    def form_valid(self, form):  # type: ignore[no-untyped-def]
        response = super().form_valid(form)
        audit_record(actor=_actor(self.request), action=Action.PASSWORD_CHANGE)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):  # type: ignore[no-untyped-def]
        audit_record(
            actor=Actor.anonymous(self.request, username=form.cleaned_data["email"][:150]),
            action=Action.PASSWORD_RESET_REQUEST,
        )
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):  # type: ignore[no-untyped-def]
        response = super().form_valid(form)
        user = form.user
        audit_record(
            actor=Actor(user_id=user.pk, username=user.get_username(), role="", ip=client_ip(self.request)),
            action=Action.PASSWORD_CHANGE,
            detail={"via": "reset"},
        )
        return response
