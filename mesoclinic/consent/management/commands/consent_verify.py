from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mesoclinic.consent.models import Consent
from mesoclinic.consent.services import consent_problems, record_verification


class Command(BaseCommand):
    help = (
        "Check every signed consent: its stored text, signature and PDF against their SHA-256 and against "
        "the hashes written into the audit trail at signing. Exits non-zero and lists every consent changed "
        "since."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = consent_problems()
        checked = Consent.objects.count()
        record_verification(problems, checked)
        if problems:
            for problem in problems:
                self.stderr.write(f"consent {problem.consent_id}: {problem.problem}")
            raise CommandError(f"Stored consents were changed after signing: {len(problems)} problem(s).")
        self.stdout.write(f"Consents intact: {checked} checked.")
