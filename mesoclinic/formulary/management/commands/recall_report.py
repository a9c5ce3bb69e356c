"""The whole recall report of a lot, however big, as files: a PDF (the request prints it by parts of
``documents.PDF_PART_PATIENTS`` patients, this command in one document) and/or a CSV. Run as a named staff
user, who needs exposure.view in the lot's clinic: the files are audited as a print and an export of
exactly the patients they list, like the downloads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.http import Http404
from django.utils import translation

from mesoclinic.accounts.actors import Caller
from mesoclinic.accounts.models import User
from mesoclinic.accounts.policy import Perm
from mesoclinic.audit.models import Action
from mesoclinic.formulary import documents, services


class Command(BaseCommand):
    help = "Write the recall report of a lot (every exposed patient) to a PDF and/or a CSV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("lot_id", type=int)
        parser.add_argument("--user", required=True, help="The staff username the report is printed as.")
        parser.add_argument("--pdf", type=Path, help="Write the PDF here.")
        parser.add_argument("--csv", type=Path, help="Write the CSV here.")
        parser.add_argument("--language", default="en", help="The language of the PDF's headings (en, fr).")

    def handle(
        self,
        *args: Any,
        lot_id: int,
        user: str,
        pdf: Path | None,
        csv: Path | None,
        language: str,
        **options: Any,
    ) -> None:
        if pdf is None and csv is None:
            raise CommandError("Say where to write the report: --pdf FILE and/or --csv FILE.")
        account = User.objects.filter(username=user, is_active=True).first()
        if account is None:
            raise CommandError(f"No active user named {user!r}.")
        caller = Caller(user=account, ip=None)
        try:
            lot = services.lot_get(caller=caller, lot_id=lot_id, perm=Perm.EXPOSURE_VIEW)
        except (Http404, PermissionDenied):
            raise CommandError(f"{user} may not read the recall report of lot {lot_id}.") from None
        if csv is not None:
            report = services.lot_exposure(caller=caller, lot=lot, action=Action.PATIENT_EXPORT)
            csv.write_text(documents.recall_csv(report), encoding="utf-8")
            self.stdout.write(f"{csv}: {report.patient_count} patients")
        if pdf is not None:
            began = time.perf_counter()
            report = services.lot_exposure(caller=caller, lot=lot, action=Action.PATIENT_PRINT)
            with translation.override(language):
                pdf.write_bytes(documents.recall_pdf(report, lot.clinic))
            self.stdout.write(
                f"{pdf}: {report.patient_count} patients in {time.perf_counter() - began:.1f} s"
            )
