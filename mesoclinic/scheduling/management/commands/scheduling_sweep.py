"""Mend the outbox now (what the queued sweep does every few minutes): for cron, or after a restore."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from mesoclinic.scheduling import services


class Command(BaseCommand):
    help = "Resolve stale message claims and deliver messages whose task was lost; queue the periodic sweep."

    def handle(self, *args: Any, **options: Any) -> None:
        outcomes = services.messages_sweep(worker="scheduling_sweep")
        services.ensure_sweep()
        self.stdout.write(", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())) or "nothing to do")
