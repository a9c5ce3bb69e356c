"""The pages: desk and portal intake, the invitation, history with what changed, the panel, the screening page
and review form, and bounded queries."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mesoclinic.audit.models import Action, AuditEvent
from mesoclinic.patients.models import Patient
from mesoclinic.screening.forms import ack_field_name
from mesoclinic.screening.models import Intake, Medicine, MedicineName, Review
from tests.conftest import World, client_for
from tests.screening_support import ensure_catalogues, submit

# The test clinics are in Paris: dates are checked against the clinic's own today.
TODAY = timezone.localdate(timezone=ZoneInfo("Europe/Paris"))


@pytest.fixture(autouse=True)
def _catalogues(db: None) -> None:
    ensure_catalogues()


def intake_form(**changes: str) -> dict[str, str]:
    data = {
        "pregnancy": "none",
        "conditions": "autoimmune",
        "weight_stable": "yes",
        "allergies": "soy\nlatex",
        "goals": "Smoother thighs",
        "previous_treatments": "",
        "medications-TOTAL_FORMS": "3",
        "medications-INITIAL_FORMS": "0",
        "medications-MIN_NUM_FORMS": "0",
        "medications-MAX_NUM_FORMS": "40",
        "medications-0-name": "Advil",
        "medications-0-last_taken": (TODAY - timedelta(days=2)).isoformat(),
        "medications-1-name": "",
        "medications-1-last_taken": "",
        "medications-2-name": "",
        "medications-2-last_taken": "",
    }
    data.update(changes)
    return data


def test_desk_intake_saves_a_version_and_prefills_the_next(world: World) -> None:
    client = client_for(world.users["front_desk"])
    url = f"/screening/patients/{world.patient.pk}/intake/"
    assert client.get(url).status_code == 200
    response = client.post(url, intake_form())
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{world.patient.pk}/"
    intake = Intake.objects.get(patient=world.patient)
    assert (intake.version, intake.submitted_as, intake.conditions, intake.allergies) == (
        1,
        "staff",
        ["autoimmune"],
        ["soy", "latex"],
    )
    assert [(m.name, m.last_taken) for m in intake.medications.all()] == [
        ("Advil", TODAY - timedelta(days=2))
    ]
    page = client.get(url)
    assert page.context["form"].initial["allergies"] == "soy\nlatex"
    assert page.context["formset"].initial == [{"name": "Advil", "last_taken": TODAY - timedelta(days=2)}]


def test_desk_intake_errors_land_on_the_right_row_and_nothing_is_stored(world: World) -> None:
    client = client_for(world.users["front_desk"])
    future = (TODAY + timedelta(days=3)).isoformat()
    response = client.post(
        f"/screening/patients/{world.patient.pk}/intake/",
        intake_form(**{"medications-1-name": "Aleve", "medications-1-last_taken": future}),
    )
    assert response.status_code == 400
    assert response.context["formset"].forms[1].errors["last_taken"]
    unknown = client.post(
        f"/screening/patients/{world.patient.pk}/intake/", intake_form(conditions="vampirism")
    )
    assert unknown.status_code == 400
    assert unknown.context["form"].errors["conditions"]
    assert not Intake.objects.exists()


def test_history_shows_what_changed(world: World) -> None:
    submit(
        world.patient,
        world.users["front_desk"],
        medications=(("Advil", date(2026, 1, 2)),),
        allergies=("soy",),
    )
    submit(
        world.patient,
        world.users["practitioner"],
        pregnancy="planning",
        medications=(("Advil", date(2026, 1, 2)), ("Eliquis", None)),
        allergies=("soy",),
    )
    response = client_for(world.users["practitioner"]).get(
        f"/screening/patients/{world.patient.pk}/intake/history/"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index('id="intake-v2"') < html.index('id="intake-v1"')
    v2 = html[html.index('id="intake-v2"') : html.index('id="intake-v1"')]
    assert "<ins>Eliquis</ins>" in v2
    assert "<del>none</del> → <ins>planning</ins>" in v2
    assert "allergies" not in v2.split("All answers")[0].lower()
    event = AuditEvent.objects.order_by("-seq").first()
    assert event is not None and event.action == Action.INTAKE_READ


def test_portal_intake_by_the_patient(world: World) -> None:
    client = client_for(world.users["patient"])
    assert b"My questionnaire" in client.get("/portal/").content
    response = client.post("/screening/portal/intake/", intake_form())
    assert response.status_code == 302
    assert response["Location"] == "/portal/"
    intake = Intake.objects.get()
    assert intake.patient == world.own_patient
    assert intake.submitted_as == "patient"
    assert intake.submitted_by == world.users["patient"]


def test_the_invitation_sets_a_password_and_leads_to_the_questionnaire(world: World) -> None:
    desk = client_for(world.users["front_desk"])
    response = desk.post(f"/screening/patients/{world.patient.pk}/intake/invite/")
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    match = re.search(r"https?://[^/\s]+(/screening/invitation/\S+/)", str(mail.outbox[0].body))
    assert match is not None
    link = match.group(1)

    patient_browser = Client()
    opened = patient_browser.get(link)
    assert opened.status_code == 302  # Django hides the token from the address bar
    form_url = opened["Location"]
    assert patient_browser.get(form_url).context["validlink"] is True
    new_password = "a long enough passphrase 2026"
    done = patient_browser.post(form_url, {"new_password1": new_password, "new_password2": new_password})
    assert done.status_code == 302
    assert done["Location"] == "/screening/portal/intake/"
    # Signed in, on the questionnaire of their own record.
    page = patient_browser.get("/screening/portal/intake/")
    assert page.status_code == 200
    assert page.context["patient"] == world.patient
    assert patient_browser.post("/screening/portal/intake/", intake_form()).status_code == 302
    assert Intake.objects.get().submitted_as == "patient"
    # The link worked once.
    again = Client().get(link, follow=True)
    assert again.context["validlink"] is False
    world.patient.refresh_from_db()
    assert world.patient.user is not None and world.patient.user.check_password(new_password)


def test_invite_without_email_says_so(world: World) -> None:
    Patient.objects.filter(pk=world.patient.pk).update(email="")
    client = client_for(world.users["front_desk"])
    response = client.post(f"/screening/patients/{world.patient.pk}/intake/invite/", follow=True)
    assert b"no email address" in response.content
    assert mail.outbox == []


@pytest.mark.parametrize("portal", [False, True])
def test_intake_errors_name_the_row_as_shown(world: World, portal: bool) -> None:
    """A blank row before a bad one does not shift the error to the wrong row; a date without a name is an
    error on that row's name."""
    user, url = (
        (world.users["patient"], "/screening/portal/intake/")
        if portal
        else (world.users["front_desk"], f"/screening/patients/{world.patient.pk}/intake/")
    )
    future = (TODAY + timedelta(days=3)).isoformat()
    response = client_for(user).post(
        url,
        intake_form(
            **{
                "medications-0-name": "",
                "medications-0-last_taken": "",
                "medications-1-name": "",
                "medications-1-last_taken": (TODAY - timedelta(days=1)).isoformat(),
                "medications-2-name": "Aleve",
                "medications-2-last_taken": future,
            }
        ),
    )
    assert response.status_code == 400
    rows = response.context["formset"].forms
    assert not rows[0].errors
    assert list(rows[1].errors) == ["name"]
    assert list(rows[2].errors) == ["last_taken"]
    assert not Intake.objects.exists()


def _new_events(since: int) -> list[tuple[str, int | None]]:
    return list(AuditEvent.objects.filter(seq__gt=since).order_by("seq").values_list("action", "patient_id"))


def _last_seq() -> int:
    event = AuditEvent.objects.order_by("-seq").first()
    return event.seq if event is not None else 0


def test_the_pages_audit_their_reads_and_writes(world: World) -> None:
    patient, own = world.patient, world.own_patient
    desk = client_for(world.users["front_desk"])
    practitioner = client_for(world.users["practitioner"])
    portal = client_for(world.users["patient"])
    panel = f"/screening/patients/{patient.pk}/panel/"
    steps: list[tuple[Client, str, str, dict[str, str] | None, list[tuple[str, int | None]]]] = [
        (desk, "get", f"/screening/patients/{patient.pk}/intake/", None, [(Action.INTAKE_READ, patient.pk)]),
        (
            desk,
            "post",
            f"/screening/patients/{patient.pk}/intake/",
            intake_form(),
            [(Action.INTAKE_SUBMIT, patient.pk)],
        ),
        (desk, "get", panel, None, [(Action.INTAKE_READ, patient.pk)]),
        (practitioner, "get", panel, None, [(Action.SCREENING_READ, patient.pk)]),
        (
            practitioner,
            "get",
            f"/screening/patients/{patient.pk}/",
            None,
            [(Action.SCREENING_READ, patient.pk)],
        ),
        (portal, "get", "/screening/portal/intake/", None, [(Action.INTAKE_READ, own.pk)]),
        (portal, "post", "/screening/portal/intake/", intake_form(), [(Action.INTAKE_SUBMIT, own.pk)]),
        (portal, "get", f"/screening/patients/{own.pk}/panel/", None, [(Action.INTAKE_READ, own.pk)]),
    ]
    for client, method, url, data, expected in steps:
        since = _last_seq()
        response = getattr(client, method)(url, data) if data is not None else getattr(client, method)(url)
        assert response.status_code in (200, 302), (url, response.status_code)
        assert _new_events(since) == expected, url


def test_the_panel_audits_its_read_when_there_is_nothing_to_screen_or_it_cannot_be(world: World) -> None:
    client = client_for(world.users["practitioner"])
    url = f"/screening/patients/{world.patient.pk}/panel/"
    since = _last_seq()
    assert client.get(url).status_code == 200  # no intake yet
    assert _new_events(since) == [(Action.SCREENING_READ, world.patient.pk)]
    submit(world.patient, world.users["practitioner"])
    # A record whose date of birth is now after today (a data-entry error): the screening refuses the facts.
    Patient.objects.filter(pk=world.patient.pk).update(date_of_birth=TODAY + timedelta(days=30))
    since = _last_seq()
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "before the patient" in response.content.decode()
    events = AuditEvent.objects.filter(seq__gt=since).order_by("seq")
    assert [(e.action, e.patient_id) for e in events] == [(Action.SCREENING_READ, world.patient.pk)]
    assert events[0].detail["outcome"] == "invalid"


# --- the panel on the patient page ----------------------------------------------------------------------


def _panel(world: World, role: str, patient: Patient) -> str:
    client = client_for(world.users[role])
    response = client.get(f"/screening/patients/{patient.pk}/panel/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b"<html" not in response.content
    return response.content.decode()


def test_the_patient_page_loads_the_panel(world: World) -> None:
    html = client_for(world.users["practitioner"]).get(f"/patients/{world.patient.pk}/").content.decode()
    assert f'hx-get="/screening/patients/{world.patient.pk}/panel/"' in html
    full = client_for(world.users["practitioner"]).get(f"/screening/patients/{world.patient.pk}/panel/")
    assert b"<html" in full.content  # without htmx the link opens a page of its own


def test_panel_by_role(world: World) -> None:
    submit(world.patient, world.users["front_desk"], medications=(("Eliquis", None),))
    practitioner = _panel(world, "practitioner", world.patient)
    assert 'data-verdict="review"' in practitioner
    assert 'data-code="anticoagulant"' in practitioner
    assert "Screen and review" in practitioner
    desk = _panel(world, "front_desk", world.patient)
    assert "version 1" in desk
    assert "anticoagulant" not in desk  # the desk takes intakes; it does not see the screening
    assert "Fill the intake at the desk" in desk
    admin = _panel(world, "clinic_admin", world.patient)
    assert "version 1" not in admin
    assert "Email the questionnaire" in admin
    own = _panel(world, "patient", world.own_patient)
    assert "Fill in my questionnaire" in own
    assert "Email the questionnaire" not in own


def test_panel_says_when_the_review_is_stale(world: World) -> None:
    submit(world.patient, world.users["front_desk"])
    client = client_for(world.users["practitioner"])
    response = client.post(
        f"/screening/patients/{world.patient.pk}/",
        {"decision": "candidate", "intake_version": "1", "note": "", "confirm": "on"},
    )
    assert response.status_code == 302
    assert "stale" not in _panel(world, "practitioner", world.patient)
    submit(world.patient, world.users["front_desk"], pregnancy="pregnant")
    html = _panel(world, "practitioner", world.patient)
    assert "Screened for a session on" in html
    assert "This review is stale." in html
    assert "version 2" in html
    assert 'data-verdict="ineligible"' in html


# --- the screening page and the review form -------------------------------------------------------------


def test_review_form_requires_a_reason_for_each_warning(world: World) -> None:
    submit(world.patient, world.users["front_desk"], medications=(("Eliquis", None), ("Zorblax", None)))
    client = client_for(world.users["practitioner"])
    url = f"/screening/patients/{world.patient.pk}/"
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["form"].warning_keys == ["anticoagulant:Eliquis", "unknown-medicine:Zorblax"]
    assert b"Not recognised" in page.content
    form = {
        "decision": "candidate",
        "intake_version": "1",
        "confirm": "on",
        ack_field_name("anticoagulant:Eliquis"): "Discussed.",
    }
    refused = client.post(url, form)
    assert refused.status_code == 400
    assert "unknown-medicine:Zorblax" in " ".join(refused.context["form"].non_field_errors())
    assert not Review.objects.exists()
    unknown = ack_field_name("unknown-medicine:Zorblax")
    unsigned = client.post(url, {**form, unknown: "A vitamin.", "confirm": ""})
    assert unsigned.status_code == 400
    assert not Review.objects.exists()
    signed = client.post(url, {**form, unknown: "A vitamin."})
    assert signed.status_code == 302
    review = Review.objects.get()
    assert review.acknowledgements == [
        {
            "key": "anticoagulant:Eliquis",
            "code": "anticoagulant",
            "subject": "Eliquis",
            "reason": "Discussed.",
        },
        {
            "key": "unknown-medicine:Zorblax",
            "code": "unknown-medicine",
            "subject": "Zorblax",
            "reason": "A vitamin.",
        },
    ]
    assert review.signed_by == world.users["practitioner"]


def test_two_conditions_get_a_reason_field_each(world: World) -> None:
    submit(world.patient, world.users["front_desk"], conditions=("autoimmune", "diabetes-uncontrolled"))
    client = client_for(world.users["practitioner"])
    url = f"/screening/patients/{world.patient.pk}/"
    page = client.get(url)
    html = page.content.decode()
    first = ack_field_name("significant-condition:autoimmune")
    second = ack_field_name("significant-condition:diabetes-uncontrolled")
    assert f'name="{first}"' in html and f'name="{second}"' in html
    base = {"decision": "candidate", "intake_version": "1", "confirm": "on"}
    assert client.post(url, {**base, first: "Quiescent."}).status_code == 400
    assert client.post(url, {**base, first: "Quiescent.", second: "Controlled now."}).status_code == 302
    assert [ack["reason"] for ack in Review.objects.get().acknowledgements] == [
        "Quiescent.",
        "Controlled now.",
    ]


def test_screening_page_for_another_date_and_bad_dates(world: World) -> None:
    submit(world.patient, world.users["front_desk"], medications=(("Advil", date(2026, 5, 10)),))
    client = client_for(world.users["medical_director"])
    url = f"/screening/patients/{world.patient.pk}/"
    soon = client.get(url, {"on": "2026-05-12"})
    assert [finding.code for finding in soon.context["result"].screening.findings] == ["nsaid-washout"]
    later = client.get(url, {"on": "2026-05-17"})
    assert later.context["result"].screening.findings == ()
    before = client.get(url, {"on": "2026-05-01"})
    assert before.status_code == 400
    assert before.context["params"].errors["on"]


# --- bounded queries ------------------------------------------------------------------------------------

PANEL_QUERIES = 15
SCREENING_PAGE_QUERIES = 17


def _count(call: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = call()
        assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(("versions", "medicines"), [(1, 1), (6, 15)])
def test_panel_and_screening_page_run_a_constant_number_of_queries(
    world: World, versions: int, medicines: int
) -> None:
    for version in range(versions):
        submit(
            world.patient,
            world.users["front_desk"],
            medications=tuple(
                (name, None) for name in ["Eliquis", "Advil", "Zorblax", "Tylenol"] * medicines
            )[:medicines],
            goals=f"v{version}",
        )
    client = client_for(world.users["practitioner"])
    client.post(
        f"/screening/patients/{world.patient.pk}/",
        {"decision": "not_candidate", "intake_version": str(versions), "confirm": "on"},
    )
    client.get(f"/patients/{world.patient.pk}/")  # warm the session's once-per-login work
    panel = _count(
        lambda: client.get(f"/screening/patients/{world.patient.pk}/panel/", headers={"HX-Request": "true"})
    )
    page = _count(lambda: client.get(f"/screening/patients/{world.patient.pk}/"))
    assert (panel, page) == (PANEL_QUERIES, SCREENING_PAGE_QUERIES)


# --- the medicine catalogue page -------------------------------------------------------------------------


def test_an_unknown_medicine_links_to_the_catalogue_and_is_added_there(world: World) -> None:
    submit(world.patient, world.users["front_desk"], medications=(("Zontivity", None),))
    client = client_for(world.users["practitioner"])
    page = client.get(f"/screening/patients/{world.patient.pk}/").content.decode()
    link = f"/screening/medicines/?clinic={world.clinic.pk}&amp;name=Zontivity"
    assert link in page
    assert "Zontivity" not in _panel(world, "front_desk", world.patient)  # the desk sees no findings
    form = client.get(link.replace("&amp;", "&"))
    assert form.status_code == 200
    assert form.context["add_form"].initial["generic_name"] == "Zontivity"
    bad = client.post(
        "/screening/medicines/",
        {"clinic": world.clinic.pk, "action": "add", "generic_name": "vorapaxar", "names": "Zontivity"},
    )
    assert bad.status_code == 400
    assert bad.context["add_form"].errors["classes"]
    added = client.post(
        "/screening/medicines/",
        {
            "clinic": world.clinic.pk,
            "action": "add",
            "generic_name": "Vorapaxar",
            "classes": ["antiplatelet"],
            "names": "Zontivity\n",
        },
    )
    assert added.status_code == 302
    listed = client.get(added["Location"])
    assert [m.generic_name for m in listed.context["medicines"]] == ["vorapaxar"]
    screening = client.get(f"/screening/patients/{world.patient.pk}/")
    assert [f.key for f in screening.context["result"].screening.findings] == ["anticoagulant:Zontivity"]


def test_names_are_added_to_a_global_medicine_from_the_page(world: World) -> None:
    client = client_for(world.users["clinic_admin"])
    apixaban = Medicine.objects.get(clinic=None, generic_name="apixaban")
    taken = client.post(
        "/screening/medicines/",
        {"clinic": world.clinic.pk, "action": "names", "medicine": apixaban.pk, "names": "Advil"},
    )
    assert taken.status_code == 400
    assert "already in the catalogue" in taken.content.decode()
    added = client.post(
        "/screening/medicines/",
        {
            "clinic": world.clinic.pk,
            "action": "names",
            "medicine": apixaban.pk,
            "names": "Apixa\nApixaban Mylan",
        },
    )
    assert added.status_code == 302
    names = set(MedicineName.objects.filter(clinic=world.clinic).values_list("name", flat=True))
    assert names == {"Apixa", "Apixaban Mylan"}
