"""Settings, database durability, deployment checks, security headers, languages, demo, API tokens."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.test import Client

from mesoclinic import settings as project_settings
from mesoclinic.accounts.models import ApiToken, Membership, User, hash_token
from mesoclinic.lib.durability import durability_problems, durability_report
from mesoclinic.patients.models import Patient
from tests.conftest import World, client_for

ROOT = Path(__file__).resolve().parent.parent


# --- typed environment helpers --------------------------------------------------------------------------


def test_env_helpers_read_typed_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MC_FLAG", "yes")
    monkeypatch.setenv("MC_NUMBER", "42")
    monkeypatch.setenv("MC_LIST", "a.example, b.example ,")
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("MC_SECRET_FILE", str(secret))
    assert project_settings.env_bool("MC_FLAG", False) is True
    assert project_settings.env_int("MC_NUMBER", 1) == 42
    assert project_settings.env_list("MC_LIST", []) == ["a.example", "b.example"]
    assert project_settings.env_str("MC_SECRET") == "from-a-file"
    assert project_settings.env_str("MC_MISSING", "default") == "default"


@pytest.mark.parametrize(
    ("call", "value"),
    [
        (lambda: project_settings.env_bool("MC_BAD", False), "maybe"),
        (lambda: project_settings.env_int("MC_BAD", 1), "12abc"),
        (lambda: project_settings.env_int("MC_BAD", 1, minimum=5), "3"),
    ],
)
def test_env_helpers_fail_loudly(monkeypatch: pytest.MonkeyPatch, call: object, value: str) -> None:
    monkeypatch.setenv("MC_BAD", value)
    with pytest.raises(ImproperlyConfigured, match="MC_BAD"):
        call()  # type: ignore[operator]


def test_missing_required_and_unreadable_secret_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MC_REQUIRED", raising=False)
    with pytest.raises(ImproperlyConfigured, match="MC_REQUIRED"):
        project_settings.env_str("MC_REQUIRED")
    monkeypatch.setenv("MC_REQUIRED_FILE", "/nonexistent/secret")
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        project_settings.env_str("MC_REQUIRED")
    monkeypatch.setenv("MC_REQUIRED", "x")
    with pytest.raises(ImproperlyConfigured, match="not both"):
        project_settings.env_str("MC_REQUIRED")


def _django(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "SECRET_KEY_FILE", "DEBUG", "HTTPS", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_refuse_to_start_without_a_secret_key() -> None:
    result = _django(["check"])
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_check_deploy_with_production_settings_reports_nothing() -> None:
    result = _django(
        ["check", "--deploy", "--fail-level", "DEBUG"],
        SECRET_KEY="k" * 20 + "production-like-secret-key-value-9f8e7d6c5b4a",
        HTTPS="1",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


# --- database durability (#17) --------------------------------------------------------------------------


def test_durability_settings_hold_on_the_live_connection(db: None) -> None:
    assert durability_problems(connection) == []
    report = durability_report(connection)
    if connection.vendor == "sqlite":
        assert report == {
            "journal_mode": "wal",
            "synchronous": "2",
            "foreign_keys": "1",
            "transaction_mode": "IMMEDIATE",
        }
    else:
        assert report == {"synchronous_commit": "on"}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_creations_never_lose_a_record_number(world: World) -> None:
    """8 writers at once: every patient gets a distinct number, none fails with 'database is locked'."""
    from mesoclinic.accounts.actors import Caller
    from mesoclinic.patients.services import patient_create

    user = world.users["front_desk"]
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            for round_ in range(10):
                patient_create(
                    caller=Caller(user=User.objects.get(pk=user.pk)),
                    clinic=world.clinic,
                    data={
                        "given_name": "Par",
                        "family_name": f"Allel{index}-{round_}",
                        "date_of_birth": "1990-01-01",
                        "sex": "male",
                    },
                )
        except BaseException as exc:  # noqa: BLE001 (collected and asserted below)
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    numbers = list(
        Patient.objects.filter(family_name__startswith="Allel").values_list("record_number", flat=True)
    )
    assert len(numbers) == 80
    assert len(set(numbers)) == 80
    world.clinic.refresh_from_db()
    assert world.clinic.last_record_number == 80


# --- security headers (#12) ----------------------------------------------------------------------------


PAGES = ["/patients/", "/patients/{pk}/", "/patients/{pk}/edit/", "/patients/{pk}/access/", "/patients/new/"]


@pytest.mark.parametrize("page", PAGES)
def test_patient_pages_carry_the_security_headers(world: World, page: str) -> None:
    response = client_for(world.users["practitioner"]).get(page.format(pk=world.patient.pk))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    html = response.content.decode()
    # No inline script or inline style anywhere: the CSP would block it, so the page must not need it.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)
    assert "https://" not in html  # no CDN


def test_api_answers_are_not_stored(world: World) -> None:
    response = client_for(world.users["practitioner"]).get(f"/api/v1/patients/{world.patient.pk}")
    assert "no-store" in response["Cache-Control"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_vendored_assets_are_served_locally(world: World) -> None:
    html = client_for(world.users["practitioner"]).get("/patients/").content.decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any("htmx" in asset for asset in assets)
    assert any("pico" in asset for asset in assets)


# --- languages ------------------------------------------------------------------------------------------


def test_pages_speak_french_when_asked(world: World) -> None:
    response = Client(headers={"Accept-Language": "fr"}).get("/accounts/login/")
    assert response["Content-Language"] == "fr"
    assert "Se connecter" in response.content.decode()


def test_french_catalogue_is_complete() -> None:
    catalogue = ROOT / "mesoclinic/locale/fr/LC_MESSAGES/django.po"
    untranslated = subprocess.run(  # noqa: S603
        ["msgattrib", "--untranslated", "--no-obsolete", str(catalogue)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fuzzy = subprocess.run(  # noqa: S603
        ["msgattrib", "--only-fuzzy", "--no-obsolete", str(catalogue)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert untranslated == "" and fuzzy == ""


# --- demo clinic ----------------------------------------------------------------------------------------


def test_demo_is_idempotent_and_has_every_role(db: None) -> None:
    call_command("demo", patients=12, stdout=open(os.devnull, "w"))  # noqa: SIM115
    counts = (User.objects.count(), Patient.objects.count(), Membership.objects.count())
    call_command("demo", patients=12, stdout=open(os.devnull, "w"))  # noqa: SIM115
    assert (User.objects.count(), Patient.objects.count(), Membership.objects.count()) == counts
    roles = set(Membership.objects.values_list("user__username", "role"))
    assert roles == {
        ("admin", "clinic_admin"),
        ("practitioner", "practitioner"),
        ("director", "medical_director"),
        ("desk", "front_desk"),
        ("researcher", "researcher"),
    }
    assert Patient.objects.get(user__username="patient").given_name == "Claire"
    assert (
        Client()
        .post("/accounts/login/", {"username": "desk", "password": "mesoclinic-demo-2026"})
        .status_code
        == 302
    )


# --- API tokens -----------------------------------------------------------------------------------------


def test_api_token_is_printed_once_and_stored_hashed(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("api_token", "practitioner", name="lab import")
    token = capsys.readouterr().out.strip()
    assert token.startswith("mc_") and len(token) > 40
    stored = ApiToken.objects.get(user=world.users["practitioner"])
    assert stored.key_hash == hash_token(token)
    assert token not in stored.key_hash
    client = Client()
    response = client.get(
        f"/api/v1/patients/{world.patient.pk}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.json()["record_number"] == world.patient.record_number
    assert (
        client.get(
            f"/api/v1/patients/{world.foreign_patient.pk}", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 404
    )
    assert client.get("/api/v1/patients", headers={"Authorization": "Bearer mc_wrong"}).status_code == 401
    stored.revoked_at = stored.created_at
    stored.save()
    assert client.get("/api/v1/patients", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_api_token_for_unknown_user_fails_clearly(db: None) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="nobody"):
        call_command("api_token", "nobody")


def test_bearer_writes_need_no_csrf_but_session_writes_do(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("api_token", "front_desk")
    token = capsys.readouterr().out.strip()
    body = '{"given_name": "Api", "family_name": "Client", "date_of_birth": "1990-05-05", "sex": "female"}'
    csrf_client = Client(enforce_csrf_checks=True)
    created = csrf_client.post(
        "/api/v1/patients",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201
    session_client = client_for(world.users["front_desk"], enforce_csrf_checks=True)
    refused = session_client.post("/api/v1/patients", data=body, content_type="application/json")
    assert refused.status_code in {401, 403}
    assert Patient.objects.filter(family_name="Client").count() == 1


def test_openapi_is_published(db: None) -> None:
    schema = Client().get("/api/v1/openapi.json").json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/patients", "/api/v1/patients/{patient_id}"} <= set(schema["paths"])
    assert "BearerTokenAuth" in schema["components"]["securitySchemes"]
