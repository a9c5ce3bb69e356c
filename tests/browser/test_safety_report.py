"""A practitioner records a side effect by tapping the area on the body map; it is linked to the session
before it and opens its follow-up. Then the patient reports one about themself in the portal with a photo,
which is stored re-encoded (issue 8). In Chromium, with the strict CSP: any violation or script error fails
the test. (A refused portal report answers 422, which the console logs as an error: it is tested over HTTP in
tests/test_safety_api.py.)"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from pytest_django.fixtures import Settings

from mesoclinic.safety.models import AdverseEvent
from tests.factories import PASSWORD
from tests.safety_support import portal_user, ready, signed_session

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def media(settings: Settings, tmp_path: Path) -> Path:
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    return root


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0xA431] = "SERIAL-BROWSER"
    Image.new("RGB", (40, 30), (180, 90, 120)).save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def _login(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.locator("main button[type=submit]").click()


def test_recorded_on_the_body_map_then_reported_in_the_portal(live_server: object, page: Page) -> None:
    base = str(live_server.url)  # type: ignore[attr-defined]
    t = ready()
    session = signed_session(t, 3)
    today = t.clinic.today()

    _login(page, base, t.practitioner.username)
    page.goto(f"{base}/safety/patients/{t.patient.pk}/events/new/")
    expect(page.locator("#safety-map")).to_have_attribute("data-ready", "true")
    page.locator('#safety-map polygon[data-area="forehead"]').first.click()
    expect(page.locator("#id_area")).to_have_value("forehead")
    expect(page.locator('#safety-map polygon[data-area="forehead"]').first).to_have_class("area planned")
    page.select_option("#id_kind", "bruising")
    page.fill("#id_onset_on", (today - timedelta(days=2)).isoformat())
    page.locator("#save-event").click()
    expect(page.get_by_text("Side effect recorded and linked to the session before it.")).to_be_visible()
    expect(page.locator(f'#event-sessions tr[data-session="{session.pk}"]')).to_be_visible()
    expect(page.locator('#event-follow-ups li[data-kind="course"]')).to_be_visible()
    recorded = AdverseEvent.objects.get()
    assert (recorded.area.code if recorded.area else "", recorded.reported_via) == ("forehead", "staff")

    # The patient, in the portal, with a photo.
    page.context.clear_cookies()
    own = portal_user(t.patient)
    _login(page, base, own.username)
    page.goto(f"{base}/safety/portal/")
    page.select_option("#id_kind", "swelling")
    page.select_option("#id_area", "forehead")
    page.fill("#id_onset_on", today.isoformat())
    page.set_input_files("#id_photo", {"name": "IMG_7.JPG", "mimeType": "image/jpeg", "buffer": _jpeg()})
    page.locator("#send-report").click()
    expect(page.get_by_text("Thank you: the clinic has your report")).to_be_visible()
    report = AdverseEvent.objects.get(reported_via="patient")
    assert report.patient_id == t.patient.pk and report.has_photo
    expect(page.locator("#my-events")).to_contain_text("Swelling")
    photo = page.request.get(f"{base}/safety/events/{report.pk}/photo/")
    assert photo.status == 200 and b"SERIAL-BROWSER" not in photo.body()
