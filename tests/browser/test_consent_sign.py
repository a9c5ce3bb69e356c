"""A patient reads and signs their consent in the portal, in Chromium, drawing the signature with the mouse on
the canvas: an empty pad is refused, a drawn one is stored as a PNG with the strokes in it (issue 6)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from mesoclinic.consent.models import Consent
from mesoclinic.consent.services import consent_signature
from tests.consent_support import ensure_consent_seed, set_price
from tests.factories import PASSWORD, UserFactory
from tests.treatments_support import treat

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_the_patient_signs_with_a_drawn_signature(live_server: object, page: Page) -> None:
    base = str(live_server.url)  # type: ignore[attr-defined]
    ensure_consent_seed()
    t = treat(consented=False)
    set_price(t.plan, "350.00")
    user = UserFactory.create(username="claire")
    t.patient.user = user
    t.patient.save(update_fields=["user"])

    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "claire")
    page.fill("#id_password", PASSWORD)
    page.locator("main button[type=submit]").click()
    page.goto(f"{base}/consent/portal/")
    page.locator(f'[data-sign="{t.plan.pk}"]').click()
    expect(page.locator("#consent-text")).to_contain_text("Hyaluronic acid")
    expect(page.locator("#consent-text")).to_contain_text("One session costs 350.00 EUR")
    canvas = page.locator("#signature-pad")
    expect(canvas).to_have_attribute("data-ready", "true")
    page.fill("#id_typed_name", t.patient.full_name)

    # Nothing drawn: refused, nothing stored.
    page.locator("#sign-submit").click()
    expect(page.locator("#signature-error")).to_have_text("Draw your signature in the box.")
    assert not Consent.objects.exists()

    # Draw a signature with the mouse: a few strokes across the pad.
    page.fill("#id_typed_name", t.patient.full_name)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None
    strokes = [
        [(0.10, 0.60), (0.20, 0.30), (0.30, 0.70), (0.40, 0.35), (0.50, 0.65)],
        [(0.55, 0.50), (0.70, 0.40), (0.85, 0.55)],
    ]
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        page.mouse.up()
    expect(canvas).to_have_attribute("data-strokes", "2")
    page.locator("#sign-submit").click()
    expect(page).to_have_url(f"{base}/consent/portal/")
    expect(page.locator(f'.consent-plan[data-plan="{t.plan.pk}"]')).to_contain_text(
        "Waiting for the practitioner's countersignature"
    )

    consent = Consent.objects.get()
    assert (consent.signed_via, consent.recorded_by_id, consent.typed_name) == (
        "portal",
        user.pk,
        t.patient.full_name,
    )
    with Image.open(io.BytesIO(consent_signature(consent))) as image:
        assert image.format == "PNG" and image.size == (600, 200)
        pixels = np.asarray(image.convert("RGBA"))
    ink = pixels[..., 3] > 32
    columns = np.flatnonzero(ink.any(axis=0))
    # The strokes span the pad from about 10 % to 85 % of its width, where the mouse went.
    assert ink.sum() > 500 and columns[0] < 100 and columns[-1] > 480
