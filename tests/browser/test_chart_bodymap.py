"""A practitioner checks a patient in through the gate, charts the session by tapping the body map in
Chromium,
and signs it: the points stored are exactly where the taps landed on the drawing (issue 5)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from mesoclinic.treatments.models import ChartedArea, TreatmentSession
from mesoclinic.treatments.rules import interior_point
from tests.factories import PASSWORD
from tests.treatments_support import treat

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _tap(page: Page, view: str, area: str, x: float, y: float) -> list[float]:
    """Tap the drawing of ``area`` at view coordinates (x, y); answer where the tap lands in view coordinates,
    rounded as the page rounds them."""
    page.locator(f'svg[data-view="{view}"] polygon[data-area="{area}"]').scroll_into_view_if_needed()
    screen = page.evaluate(
        """([view, x, y]) => {
            const svg = document.querySelector('svg[data-view="' + view + '"]');
            const point = svg.createSVGPoint(); point.x = x; point.y = y;
            const onScreen = point.matrixTransform(svg.getScreenCTM());
            return [Math.round(onScreen.x), Math.round(onScreen.y)];
        }""",
        [view, x, y],
    )
    page.mouse.click(screen[0], screen[1])
    landed = page.evaluate(
        """([view, sx, sy]) => {
            const svg = document.querySelector('svg[data-view="' + view + '"]');
            const point = svg.createSVGPoint(); point.x = sx; point.y = sy;
            const local = point.matrixTransform(svg.getScreenCTM().inverse());
            return [Math.round(local.x * 10) / 10, Math.round(local.y * 10) / 10];
        }""",
        [view, screen[0], screen[1]],
    )
    return [float(landed[0]), float(landed[1])]


def test_chart_a_session_by_tapping_the_body_map(live_server: object, page: Page) -> None:
    base = str(live_server.url)  # type: ignore[attr-defined]
    t = treat()
    preparation = t.prepare()
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", t.practitioner.username)
    page.fill("#id_password", PASSWORD)
    page.locator("main button[type=submit]").click()

    # The plan page, then the check-in gate: a valid consent and no open bruising are notes, nothing blocks.
    page.goto(f"{base}/treatments/plans/{t.plan.pk}/")
    expect(page.locator("#plan-progress")).to_contain_text("0 of 6 sessions done")
    page.locator("#check-in").click()
    expect(page.locator('[data-code="consent-valid"][data-severity="info"]')).to_be_visible()
    page.get_by_role("button", name="Start the session").click()
    session = TreatmentSession.objects.get(plan=t.plan)
    expect(page).to_have_url(f"{base}/treatments/sessions/{session.pk}/chart/")

    # Tap the forehead twice (two injection points), then the left cheek once.
    forehead, cheek = t.area("forehead"), t.area("cheek-left")
    expect(page.locator("#bodymap")).to_have_attribute("data-ready", "true")
    page.get_by_role("tab", name="Face and neck").click()
    expect(page.locator('figure[data-view="face"]')).to_be_visible()
    fx, fy = interior_point(forehead.outline)
    cx, cy = interior_point(cheek.outline)
    taps = {
        "forehead": [_tap(page, "face", "forehead", fx - 8, fy), _tap(page, "face", "forehead", fx + 8, fy)],
        "cheek-left": [_tap(page, "face", "cheek-left", cx, cy)],
    }
    cards = page.locator("#chart-areas .area-card")
    expect(cards).to_have_count(2)
    expect(cards.nth(0).locator(".point-count")).to_have_text("2")
    expect(cards.nth(0).locator(".area-name")).to_have_text("Forehead")
    expect(page.locator('svg[data-view="face"] circle.mark')).to_have_count(3)

    # Tapping a point again removes it; tap it back.
    page.locator('svg[data-view="face"] circle.mark').nth(2).click()
    expect(cards.nth(1).locator(".point-count")).to_have_text("0")
    taps["cheek-left"] = [_tap(page, "face", "cheek-left", cx, cy)]

    for index in range(2):
        card = cards.nth(index)
        card.get_by_label("Technique").select_option("nappage")
        card.get_by_label("Intended depth (mm)").fill("1.5")
        card.get_by_label("Injections").fill("30")
        card.get_by_label("Volume per injection (mL)").fill("0.02")
        card.get_by_label("Preparation").select_option(str(preparation.pk))
    page.get_by_label("Topical anaesthetic").select_option("lidocaine-prilocaine")
    page.locator("#save-chart").click()
    expect(page.get_by_text("Chart saved.")).to_be_visible()

    stored = {
        row.area.code: row.points
        for row in ChartedArea.objects.filter(session=session).select_related("area")
    }
    assert stored == taps

    page.locator("#sign-session").click()
    expect(page.locator("#session-status")).to_have_attribute("data-status", "signed")
    session.refresh_from_db()
    assert session.status == "signed" and session.topical_anaesthetic == "lidocaine-prilocaine"
    expect(page.locator("#charted-areas tr[data-area]")).to_have_count(2)
