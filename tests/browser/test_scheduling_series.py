"""The front desk books a whole series in a real browser (issue 7, "Done when"): the series page proposes
every session inside its window, a slip (a time outside the practitioner's hours) refuses the whole series
with its reason and books nothing, and once corrected every ticked session is booked and the practitioner's
week shows it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from mesoclinic.scheduling.models import Appointment
from tests.factories import PASSWORD
from tests.scheduling_support import schedule

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.console_allows("status of 422"),  # the refused series answers 422 and shows why
]


def test_the_desk_books_a_series(live_server: object, page: Page) -> None:
    s = schedule(sessions=4)
    base = str(live_server.url)  # type: ignore[attr-defined]
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", s.t.desk.username)
    page.fill("#id_password", PASSWORD)
    page.locator("main button[type=submit]").click()
    expect(page).not_to_have_url(f"{base}/accounts/login/")

    page.goto(f"{base}/scheduling/series/{s.t.plan.pk}/")
    rows = page.locator("#series tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator('#series tr[data-state="proposed"]')).to_have_count(4)
    for number in range(1, 5):
        expect(page.get_by_label(f"Book session {number}")).to_be_checked()

    # A slip: session 3 at 03:00, when nobody works. The whole series is refused, nothing is booked.
    third = page.locator('#series tr[data-number="3"]')
    original = third.locator('input[name="time-3"]').input_value()
    third.locator('input[name="time-3"]').fill("03:00")
    page.locator("#book-series").click()
    expect(page.locator("#series-refusal")).to_be_visible()
    expect(page.get_by_text("Session 3").first).to_be_visible()
    assert Appointment.objects.count() == 0

    # Corrected: every session is booked, in order, each one inside its window.
    page.locator('#series tr[data-number="3"] input[name="time-3"]').fill(original)
    page.locator("#book-series").click()
    expect(page.locator('#series tr[data-state="booked"]')).to_have_count(4)
    booked = list(Appointment.objects.filter(plan=s.t.plan).order_by("series_number"))
    assert [a.series_number for a in booked] == [1, 2, 3, 4]
    assert all(a.status == "booked" and a.via == "desk" for a in booked)
    dates = [a.starts_at.astimezone(s.clinic.zone).date() for a in booked]
    gaps = [(later - earlier).days for earlier, later in zip(dates, dates[1:], strict=False)]
    version = s.plan.protocol_version
    assert all(version.interval_min_days <= gap <= version.interval_max_days for gap in gaps), gaps

    # The practitioner's week shows the first session.
    first_day = booked[0].starts_at.astimezone(s.clinic.zone).date()
    page.goto(
        f"{base}/scheduling/?date={first_day.isoformat()}&view=week&practitioner={booked[0].practitioner_id}"
    )
    expect(page.locator(f'[data-appointment="{booked[0].pk}"]')).to_have_count(1)
