from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from mesoclinic.audit.models import Action, AuditEvent
from tests.conftest import World
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_sign_in_find_a_patient_and_open_the_record(live_server: object, world: World, page: Page) -> None:
    base = str(live_server.url)  # type: ignore[attr-defined]
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/accounts/login/?next=/")
    page.fill("#id_username", "practitioner")
    page.fill("#id_password", PASSWORD)
    page.locator("main button[type=submit]").click()
    expect(page).to_have_url(f"{base}/patients/")

    # Typing searches as you type (htmx), without a page load.
    page.fill("#patient-search", "lef")
    results = page.locator("#results")
    expect(results.get_by_role("link", name="LEFÈVRE Hélène")).to_be_visible()
    expect(results.get_by_role("link", name="MARTIN Claire")).to_have_count(0)

    results.get_by_role("link", name="LEFÈVRE Hélène").click()
    expect(page).to_have_url(f"{base}/patients/{world.patient.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("LEFÈVRE Hélène")
    expect(page.get_by_text(world.patient.record_number).first).to_be_visible()

    assert AuditEvent.objects.filter(
        action=Action.PATIENT_READ, patient_id=world.patient.pk, username="practitioner"
    ).exists()
