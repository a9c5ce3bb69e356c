"""The education library and consent templates in English and French (R-EDU) — see
mesoclinic/consent/seed.py."""

from django.db import migrations

from mesoclinic.consent.seed import load


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
