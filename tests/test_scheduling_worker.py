"""Reminders through the real task worker (issue 7, "Done when"): ``manage.py db_worker`` runs in its own
process against the test database, is killed (SIGKILL) twice in the middle of sending, and a third worker
finishes. Every message goes out exactly once — each key reaches the transport's journal once, no send is
repeated — and each ends "sent", its attempts logged. On whichever database the suite runs on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time as clock
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from mesoclinic.scheduling.models import ContactPreference, Message, MessageAttempt
from mesoclinic.scheduling.services import SWEEP_TASK_PATH
from tests.scheduling_support import journal, schedule

ROOT = Path(__file__).resolve().parent.parent
PATIENTS = 6  # a consultation each (a confirmation and a day-before reminder): half by SMS, half by email
WAIT_SECONDS = 120  # an upper bound on a hung worker, not a timing assertion


def _database_env() -> dict[str, str]:
    """The worker's settings point at the database this test runs on."""
    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return {"SQLITE_PATH": str(config["NAME"])}
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    credentials = f"{user}{password}@" if user else ""
    host = config.get("HOST") or "localhost"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return {"DATABASE_URL": f"postgres://{credentials}{host}{port}/{config['NAME']}", "CONN_MAX_AGE": "0"}


def _start(worker_id: str, outbox: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SQLITE_PATH"}},
        **_database_env(),
        "SMS_BACKEND": "tests.scheduling_support.CountingSmsBackend",
        "SMS_FILE_PATH": str(outbox),
        "EMAIL_BACKEND": "tests.scheduling_support.CountingEmailBackend",
        "EMAIL_FILE_PATH": str(outbox / "mail"),
        "MESSAGE_LEASE_SECONDS": "2",
        "MESSAGE_SWEEP_SECONDS": "1",
    }
    return subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--no-startup-delay",
            "--no-reload",
            "--interval",
            "0.1",
            "--worker-id",
            worker_id,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = clock.monotonic() + WAIT_SECONDS
    while not condition():
        assert process.poll() is None, "the worker exited"
        assert clock.monotonic() < deadline, "the worker made no progress"
        clock.sleep(0.02)


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_reminders_go_exactly_once_when_the_worker_is_killed_mid_run(tmp_path: Path) -> None:
    s = schedule()
    patients = [s.t.patient, *(s.other_patient() for _ in range(PATIENTS - 1))]
    for index, patient in enumerate(patients):
        patient.phone = f"+33 6 00 00 00 {index:02d}"
        patient.email = f"patient{index}@example.org"
        patient.save()
        ContactPreference.objects.create(patient=patient, channel="sms" if index % 2 else "email")
        s.book(
            s.monday + timedelta(days=8 + index // 4),
            9 + index % 4,
            kind="consultation",
            patient=patient,
            room=False,
        )
    # Time passes: every message is due now (the tasks too), and the sweep runs as soon as a worker starts.
    past = timezone.now() - timedelta(seconds=1)
    Message.objects.update(due_at=past)
    DBTaskResult.objects.update(run_after=past)
    keys = {m.key for m in Message.objects.all()}
    by_sms = Message.objects.filter(patient__contact_preference__channel="sms").count()
    assert len(keys) == 2 * PATIENTS and DBTaskResult.objects.filter(task_path=SWEEP_TASK_PATH).exists()

    def wrote() -> int:
        return sum(1 for line in journal(tmp_path) if line.startswith("wrote "))

    def at_least(count: int) -> Callable[[], bool]:
        return lambda: wrote() >= count

    # Two workers killed mid-run, each after a few sends (the transport is slow on both sides of its write,
    # so a kill often lands inside a send).
    for worker_id, sends in (("first", 3), ("second", 7)):
        process = _start(worker_id, tmp_path)
        try:
            _wait_for(at_least(sends), process)
            clock.sleep(0.07)
        finally:
            _kill(process)
        assert Message.objects.exclude(status="sent").exists(), "killed before the end"
    # A third worker finishes: the sweep resolves what the dead workers left claimed, without sending twice.
    process = _start("third", tmp_path)
    try:
        _wait_for(lambda: not Message.objects.exclude(status="sent").exists(), process)
    finally:
        _kill(process)

    lines = journal(tmp_path)
    assert [line for line in lines if line.startswith("again ")] == []
    assert Counter(line.removeprefix("wrote ") for line in lines) == Counter(dict.fromkeys(keys, 1))
    assert len(list(tmp_path.glob("*.json"))) == by_sms == PATIENTS
    assert len(list((tmp_path / "mail").glob("*.eml"))) == len(keys) - by_sms
    # Every message is logged as sent once (directly, or recovered after a dead worker's send).
    finished = Counter(
        MessageAttempt.objects.filter(outcome__in=["sent", "recovered"]).values_list("message_id", flat=True)
    )
    assert set(finished.values()) == {1} and len(finished) == len(keys)
