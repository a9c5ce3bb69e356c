from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from mesoclinic.accounts.models import ApiToken, User, hash_token
from mesoclinic.audit.models import Action
from mesoclinic.audit.services import Actor, audit_record


class Command(BaseCommand):
    help = "Create an API bearer token for a user and print it once (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="What the token is for, e.g. 'lab import'.")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user named {username!r}.")
        secret = ApiToken.new_secret()
        with transaction.atomic():
            token = ApiToken.objects.create(user=user, name=name, key_hash=hash_token(secret))
            audit_record(
                actor=Actor(user_id=None, username="manage.py", role="", ip=None),
                action=Action.API_TOKEN_CREATE,
                obj=token,
                detail={"user": user.pk},
            )
        self.stdout.write(secret)
