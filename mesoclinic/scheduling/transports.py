"""How messages leave: email through Django's email backends, SMS behind a small interface.

Every send carries the message row's key (``Message.key``): the email's Message-ID, the SMS's idempotency
key. A transport that can also answer ``delivered(key)`` lets the outbox resolve a send that a dead worker
left half-done without sending twice; one that cannot answers None, and such a message is marked
"uncertain" rather than sent again (services.message_deliver).

The SMS backend is chosen by ``SMS_BACKEND``: ``FileSmsBackend`` (one JSON file per message under
``SMS_FILE_PATH``, the development and test default) or ``ConsoleSmsBackend``; a provider's backend is one
class with the same two methods."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.filebased import EmailBackend as DjangoFileBackend
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger("mesoclinic.scheduling")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _file_name(key: str, suffix: str) -> str:
    return _SAFE.sub("_", key)[:150] + suffix


def _write_once(directory: Path, name: str, data: bytes) -> bool:
    """Write the file atomically unless it exists (answers whether it wrote)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    if target.exists():
        return False
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


# --- SMS ----------------------------------------------------------------------------------------------------


class SmsBackend(Protocol):
    def send(self, *, to: str, body: str, key: str, sender: str) -> None:
        """Send one text message; ``key`` is the same for every attempt at the same message."""

    def delivered(self, key: str) -> bool | None:
        """Whether the message with this key went out (None: this backend cannot tell)."""


class FileSmsBackend:
    """Writes each message to ``SMS_FILE_PATH/<key>.json`` (atomically, once per key)."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory or settings.SMS_FILE_PATH)

    def send(self, *, to: str, body: str, key: str, sender: str) -> None:
        payload = {"to": to, "from": sender, "body": body, "key": key, "at": timezone.now().isoformat()}
        _write_once(
            self.directory, _file_name(key, ".json"), json.dumps(payload, ensure_ascii=False).encode()
        )

    def delivered(self, key: str) -> bool | None:
        return (self.directory / _file_name(key, ".json")).exists()


class ConsoleSmsBackend:
    """Logs each message (no way to ask afterwards whether it went)."""

    def send(self, *, to: str, body: str, key: str, sender: str) -> None:
        logger.info("SMS %s to %s from %s: %s", key, to, sender, body)

    def delivered(self, key: str) -> bool | None:
        return None


def sms_backend() -> SmsBackend:
    backend: SmsBackend = import_string(settings.SMS_BACKEND)()
    return backend


# --- email --------------------------------------------------------------------------------------------------


class IdempotentFileEmailBackend(DjangoFileBackend):
    """Django's file backend, one file per Message-ID (written atomically, once), that can say whether a
    Message-ID went out. For development and the worker tests; production uses SMTP."""

    def send_messages(self, email_messages: Any) -> int:
        if not email_messages:
            return 0
        sent = 0
        directory = Path(self.file_path)
        for message in email_messages:
            key = str(message.extra_headers.get("Message-ID", "")).strip("<>") or timezone.now().isoformat()
            if _write_once(directory, _file_name(key, ".eml"), message.message().as_bytes()):
                sent += 1
        return sent

    def delivered(self, message_id: str) -> bool:
        return (Path(self.file_path) / _file_name(message_id, ".eml")).exists()


@dataclass(frozen=True)
class Attachment:
    name: str
    content: bytes
    mimetype: str


def message_id(key: str) -> str:
    domain = getattr(settings, "MESSAGE_ID_DOMAIN", "mesoclinic.local")
    return f"{key}@{domain}"


def send_email(
    *, to: str, subject: str, body: str, key: str, attachments: tuple[Attachment, ...] = ()
) -> None:
    email = EmailMessage(
        subject=subject,
        body=body,
        to=[to],
        headers={"Message-ID": f"<{message_id(key)}>"},
    )
    for attachment in attachments:
        email.attach(attachment.name, attachment.content, attachment.mimetype)
    get_connection().send_messages([email])


def email_delivered(key: str) -> bool | None:
    connection = get_connection()
    check = getattr(connection, "delivered", None)
    if check is None:
        return None
    return bool(check(message_id(key)))
