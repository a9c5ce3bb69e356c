"""targets.md #7–#10: passwords, throttling, sessions, MFA."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from mesoclinic.accounts.models import User
from tests.conftest import World
from tests.factories import PASSWORD


def sign_in(client: Client, username: str, password: str = PASSWORD) -> int:
    return int(client.post("/accounts/login/", {"username": username, "password": password}).status_code)


def current_code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():06d}"


# --- passwords (#8) -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["short-pw-11", "password1234", "123456789012345"],
    ids=["11 characters", "common", "numeric"],
)
def test_weak_passwords_are_refused(db: None, password: str) -> None:
    with pytest.raises(ValidationError):
        validate_password(password, User(username="someone"))


def test_long_unicode_passphrase_is_accepted_and_hashed_with_argon2(db: None) -> None:
    passphrase = "Ça fait 64 caractères — été à Noël, naïve façon ≠ mot de passe ✓✓"[:64]
    assert len(passphrase) == 64
    user = User(username="unicode")
    validate_password(passphrase, user)
    user.set_password(passphrase)
    user.save()
    assert user.password.startswith("argon2$argon2id$")
    assert (
        Client().post("/accounts/login/", {"username": "unicode", "password": passphrase}).status_code == 302
    )


# --- throttling (#7) ------------------------------------------------------------------------------------


def test_ten_failures_lock_the_account_and_the_lock_opens_by_itself(world: World) -> None:
    client = Client(REMOTE_ADDR="192.0.2.10")
    for _ in range(9):
        assert sign_in(client, "practitioner", "not the password at all") == 200
    # The tenth failure locks the account.
    assert sign_in(client, "practitioner", "not the password at all") == 429
    # Even the right password is refused while locked.
    assert sign_in(client, "practitioner") == 429
    # Another address does not help: the account itself is locked.
    assert sign_in(Client(REMOTE_ADDR="192.0.2.99"), "practitioner") == 429
    # Fifteen minutes later the lock has expired without anyone's help.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert sign_in(Client(REMOTE_ADDR="192.0.2.10"), "practitioner") == 302


def test_many_accounts_from_one_address_are_throttled_too(world: World) -> None:
    client = Client(REMOTE_ADDR="192.0.2.20")
    for index in range(10):
        sign_in(client, f"nobody{index}", "wrong password here")
    assert sign_in(client, "front_desk") == 429


# --- sessions (#9) --------------------------------------------------------------------------------------


def _signed_in(username: str) -> Client:
    client = Client()
    assert sign_in(client, username) == 302
    return client


def test_session_id_rotates_at_sign_in(world: World) -> None:
    client = Client()
    client.get("/accounts/login/")
    client.cookies["sessionid"] = "anonymous-session-id-set-before-login"
    sign_in(client, "front_desk")
    assert client.cookies["sessionid"].value != "anonymous-session-id-set-before-login"


def test_idle_timeout_ends_the_session_server_side(world: World) -> None:
    client = _signed_in("front_desk")
    key = client.cookies["sessionid"].value
    session = client.session
    session["seen_at"] = time.time() - 15 * 60 - 5
    session.save()
    response = client.get("/patients/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not Session.objects.filter(session_key=key).exists()


def test_activity_within_the_idle_window_keeps_the_session(world: World) -> None:
    client = _signed_in("front_desk")
    session = client.session
    session["seen_at"] = time.time() - 14 * 60
    session.save()
    assert client.get("/patients/").status_code == 200


def test_absolute_timeout_after_twelve_hours_even_when_active(world: World) -> None:
    client = _signed_in("front_desk")
    session = client.session
    session["auth_at"] = time.time() - 12 * 3600 - 5
    session["seen_at"] = time.time()
    session.save()
    assert client.get("/patients/").status_code == 302
    assert client.get("/api/v1/patients").status_code == 401


def test_logout_ends_the_session_server_side(world: World) -> None:
    client = _signed_in("front_desk")
    key = client.cookies["sessionid"].value
    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    stolen = Client()
    stolen.cookies["sessionid"] = key
    assert stolen.get("/patients/").status_code == 302


def test_disabling_an_account_ends_its_sessions(world: World) -> None:
    client = _signed_in("front_desk")
    key = client.cookies["sessionid"].value
    user = world.users["front_desk"]
    user.is_active = False
    user.save()
    assert not Session.objects.filter(session_key=key).exists()
    assert client.get("/patients/").status_code == 302


# --- MFA (#10) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["clinic_admin", "medical_director"])
def test_admins_and_directors_must_enrol_before_anything_else(world: World, role: str) -> None:
    client = _signed_in(role)
    response = client.get("/patients/")
    assert response.status_code == 302 and response["Location"] == "/accounts/mfa/"
    assert client.get(f"/api/v1/patients/{world.patient.pk}").status_code == 403
    page = client.get("/accounts/mfa/")
    assert b"data:image/svg+xml;base64," in page.content
    device = TOTPDevice.objects.get(user=world.users[role], confirmed=False)
    wrong = "000000" if current_code(device) != "000000" else "111111"
    assert client.post("/accounts/mfa/", {"token": wrong}).status_code == 400
    # A failure throttles the device for a moment (django-otp doubles the wait after each failure).
    assert client.post("/accounts/mfa/", {"token": current_code(device)}).status_code == 400
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - timedelta(seconds=30)
    )
    assert client.post("/accounts/mfa/", {"token": current_code(device)}).status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/patients/").status_code == 200


def test_enrolled_staff_are_asked_for_the_code_at_every_sign_in(world: World) -> None:
    user = world.users["practitioner"]
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = _signed_in("practitioner")
    assert client.get("/patients/")["Location"] == "/accounts/mfa/"
    page = client.get("/accounts/mfa/")
    assert b"Enter your authenticator code" in page.content
    assert client.post("/accounts/mfa/", {"token": current_code(device)}).status_code == 302
    assert client.get("/patients/").status_code == 200


def test_staff_without_a_required_role_may_skip_mfa(world: World) -> None:
    client = _signed_in("front_desk")
    assert client.get("/patients/").status_code == 200
    # ...and can still choose to enrol.
    assert client.get("/accounts/mfa/").status_code == 200


# --- password reset -------------------------------------------------------------------------------------


def test_password_reset_by_email(world: World) -> None:
    user = world.users["front_desk"]
    client = Client()
    response = client.post("/accounts/password/reset/", {"email": user.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/accounts/password/reset/" in line)
    path = link.split("://", 1)[1].split("/", 1)[1]
    form_page = client.get("/" + path, follow=True)
    assert form_page.status_code == 200
    new_password = "a brand new long passphrase"
    done = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)


def test_password_reset_does_not_reveal_unknown_addresses(world: World) -> None:
    response = Client().post("/accounts/password/reset/", {"email": "nobody@example.test"})
    assert response.status_code == 302
    assert mail.outbox == []
