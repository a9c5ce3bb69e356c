"""A patient invited by email sets a password and fills the questionnaire in the portal; a practitioner opens
the patient, sees the screening on the patient page, acknowledges each warning and signs the review."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import Page, expect

from mesoclinic.accounts.actors import Caller
from mesoclinic.screening.forms import ack_field_name
from mesoclinic.screening.models import Intake, Review
from mesoclinic.screening.services import current_review, intake_invite
from tests.conftest import World
from tests.factories import PASSWORD
from tests.screening_support import ensure_catalogues

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_patient_fills_the_intake_and_a_practitioner_reviews_it(
    live_server: object, world: World, page: Page
) -> None:
    ensure_catalogues()
    base = str(live_server.url)  # type: ignore[attr-defined]
    patient = world.patient
    intake_invite(caller=Caller(user=world.users["front_desk"]), patient=patient, site_url=base)
    match = re.search(r"(http://\S+/screening/invitation/\S+/)", str(mail.outbox[-1].body))
    assert match is not None

    # The patient follows the link, chooses a password and lands on the questionnaire.
    page.goto(match.group(1))
    expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()
    page.fill("#id_new_password1", "my own long passphrase 2026")
    page.fill("#id_new_password2", "my own long passphrase 2026")
    page.get_by_role("button", name="Save and continue").click()
    expect(page).to_have_url(f"{base}/screening/portal/intake/")
    expect(page.get_by_role("heading", name="Intake questionnaire")).to_be_visible()

    page.get_by_label("Not pregnant, not breastfeeding").check()
    page.get_by_label("Autoimmune disease").check()
    page.fill('input[name="medications-0-name"]', "Eliquis")
    page.fill('input[name="medications-1-name"]', "Advil 200mg")
    page.fill(
        'input[name="medications-1-last_taken"]', (timezone.localdate() - timedelta(days=2)).isoformat()
    )
    page.get_by_label("Yes").check()
    page.get_by_label("Allergies").fill("latex")
    page.get_by_label("Your goals and what you expect, in your own words").fill("Less fat on the flanks")
    page.get_by_role("button", name="Save my answers").click()
    expect(page).to_have_url(f"{base}/portal/")
    expect(page.get_by_text("Thank you: your answers are saved (version 1).")).to_be_visible()
    intake = Intake.objects.get(patient=patient)
    assert intake.submitted_as == "patient"
    page.get_by_role("button", name="Sign out").click()

    # The practitioner sees the screening on the patient page and signs the review.
    page.goto(f"{base}/patients/{patient.pk}/")
    page.fill("#id_username", "practitioner")
    page.fill("#id_password", PASSWORD)
    page.locator("main button[type=submit]").click()
    expect(page).to_have_url(f"{base}/patients/{patient.pk}/")
    panel = page.locator("#intake-screening")
    expect(panel.locator("#screening-verdict strong")).to_have_text("Needs a practitioner's review")
    expect(panel.locator('[data-code="anticoagulant"]')).to_be_visible()
    expect(panel.locator('[data-code="nsaid-washout"]')).to_be_visible()
    panel.get_by_role("button", name="Screen and review").click()  # a link styled as a button
    expect(page).to_have_url(f"{base}/screening/patients/{patient.pk}/")

    review = page.locator("#review-form")
    review.get_by_label("Candidate", exact=True).check()
    # One reason per warning, each field named after the warning's key.
    review.locator(f'textarea[name="{ack_field_name("significant-condition:autoimmune")}"]').fill(
        "Quiescent for years; rheumatologist agrees."
    )
    review.locator(f'textarea[name="{ack_field_name("anticoagulant:Eliquis")}"]').fill(
        "Cardiologist approves a 48-hour pause."
    )
    review.locator(f'textarea[name="{ack_field_name("nsaid-washout:Advil 200mg")}"]').fill(
        "First session booked in 10 days."
    )
    review.get_by_label("I have reviewed this screening and sign this decision.").check()
    review.get_by_role("button", name="Sign the review").click()
    expect(page).to_have_url(f"{base}/patients/{patient.pk}/")
    expect(page.get_by_text("Review signed.")).to_be_visible()
    expect(page.locator("#screening-review")).to_contain_text("Candidate")
    expect(page.locator("#screening-review-session")).to_contain_text("Screened for a session on")

    signed = Review.objects.get(patient=patient)
    assert signed.decision == "candidate"
    assert signed.intake == intake
    assert [ack["key"] for ack in signed.acknowledgements] == [
        "significant-condition:autoimmune",
        "anticoagulant:Eliquis",
        "nsaid-washout:Advil 200mg",
    ]
    assert current_review(patient) == signed
