from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mesoclinic.audit.models import AuditEvent
from mesoclinic.audit.services import audit_problems


class Command(BaseCommand):
    help = (
        "Check the audit trail's hash chain; exits non-zero and lists every break if a row was tampered with."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        problems = audit_problems()
        if problems:
            for problem in problems:
                self.stderr.write(f"#{problem.seq}: {problem.problem}")
            raise CommandError(f"The audit trail has been tampered with: {len(problems)} problem(s).")
        self.stdout.write(f"Audit trail intact: {AuditEvent.objects.count()} events.")
