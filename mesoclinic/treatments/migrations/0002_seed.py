"""Body areas (our own code system, from bodymap_data), techniques (R-TECH) and the protocol templates
(R-IND, R-SERIES, R-ALT, R-EVID, R-AE) — see mesoclinic/treatments/seed.py."""

from django.db import migrations

from mesoclinic.treatments.seed import load


class Migration(migrations.Migration):
    dependencies = [("treatments", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
