"""A practitioner records a baseline, takes its photo on the capture screen, records a follow-up after a
session, takes the same view again with the baseline shown as a ghost, and opens the comparison: side by side
and as a slider (issue 9, Done when). In Chromium, with the strict CSP: any violation fails the test."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from pytest_django.fixtures import Settings

from mesoclinic.outcomes.models import Assessment, Photo
from tests.factories import PASSWORD
from tests.outcomes_support import GPS_IFD, jpeg, outcome_treat, signed_sessions, today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def media(settings: Settings, tmp_path: Path) -> Path:
    root = tmp_path / "media"
    settings.MEDIA_ROOT = root
    return root


def _loaded(page: Page, selector: str) -> None:
    expect(page.locator(selector)).to_be_visible()
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector,
    )


def _take_photo(page: Page, colour: tuple[int, int, int], name: str) -> None:
    page.set_input_files(
        "#capture-file", {"name": name, "mimeType": "image/jpeg", "buffer": jpeg(colour=colour)}
    )
    expect(page.locator("#capture-stage")).to_have_attribute("data-ready", "true")
    expect(page.locator("#capture-preview")).to_be_visible()
    page.locator("#capture-save").click()
    expect(page.get_by_text("Photo saved (re-encoded, without location or camera data).")).to_be_visible()


def test_baseline_and_follow_up_photos_then_the_comparison(
    live_server: object, page: Page, media: Path
) -> None:
    base = str(live_server.url)  # type: ignore[attr-defined]
    t = outcome_treat()
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", t.practitioner.username)
    page.fill("#id_password", PASSWORD)
    page.locator("main button[type=submit]").click()

    # The baseline, ten days ago, through the form.
    page.goto(f"{base}/outcomes/plans/{t.plan.pk}/")
    page.locator("#record-baseline").click()
    page.fill("#id_taken_on", (today(t) - timedelta(days=10)).isoformat())
    page.get_by_label("Weight (kg)").fill("79.5")
    page.get_by_label("Waist circumference at a new landmark (cm)").fill("91")
    page.locator("#save-assessment").click()
    expect(page.get_by_text("Measurements recorded.")).to_be_visible()
    baseline = Assessment.objects.get(plan=t.plan, kind="baseline")

    # Its front photo on the capture screen: no ghost yet, this one is the reference.
    page.locator('a[data-capture="abdomen-front"]').click()
    expect(page.locator("#no-ghost")).to_be_visible()
    expect(page.locator("#capture-file")).to_have_attribute("capture", "environment")
    _take_photo(page, (200, 150, 130), "IMG_0001.JPG")
    first = Photo.objects.get(assessment=baseline, view="abdomen-front")

    # A session is done; the follow-up, and the same view with the baseline as a ghost over it.
    signed_sessions(t, 1)
    page.goto(f"{base}/outcomes/plans/{t.plan.pk}/")
    page.locator("#record-follow-up").click()
    page.get_by_label("Weight (kg)").fill("79")
    page.locator("#save-assessment").click()
    expect(page.get_by_text("Measurements recorded.")).to_be_visible()
    follow_up = Assessment.objects.get(plan=t.plan, kind="follow-up")
    page.locator('a[data-capture="abdomen-front"]').click()
    _loaded(page, "#capture-ghost")
    expect(page.locator("#capture-ghost")).to_have_class("capture-ghost ghost-50")
    page.locator("#ghost-opacity").fill("80")
    expect(page.locator("#capture-ghost")).to_have_attribute("data-opacity", "80")
    expect(page.locator("#capture-ghost")).to_have_class("capture-ghost ghost-80")
    _take_photo(page, (120, 90, 80), "IMG_0002.JPG")
    second = Photo.objects.get(assessment=follow_up, view="abdomen-front")

    # The comparison: both dates side by side, then the slider.
    page.goto(f"{base}/outcomes/plans/{t.plan.pk}/")
    page.locator("#open-compare").click()
    expect(page).to_have_url(f"{base}/outcomes/plans/{t.plan.pk}/compare/")
    _loaded(page, f'#compare-side figure[data-assessment="{baseline.pk}"] img')
    _loaded(page, f'#compare-side figure[data-assessment="{follow_up.pk}"] img')
    expect(page.locator("#compare-slider")).to_have_attribute("data-ready", "true")
    _loaded(page, "#compare-before")
    page.locator("#compare-range").fill("20")
    expect(page.locator("#compare-before")).to_have_class("before reveal-20")
    page.locator("#compare-range").fill("85")
    expect(page.locator("#compare-slider")).to_have_attribute("data-reveal", "85")

    # What was kept has no GPS or camera data.
    for photo in (first, second):
        stored = Image.open(io.BytesIO((media / str(photo.image.name)).read_bytes()))
        assert not stored.getexif() and not stored.getexif().get_ifd(GPS_IFD)
