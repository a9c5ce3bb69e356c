"""Direct administrations (a product injected from the vial for a patient, without a preparation) name the
patient on their stock movement, indexed for the recall report; clinics configure their own regulatory
statuses; a product's beyond-use time is at most a year (products recorded with more are brought down to a
year first: such a number was a typing error, and opening one of their vials failed)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


MAX_BEYOND_USE_HOURS = 8760


def cap_beyond_use(apps, schema_editor):
    Product = apps.get_model("formulary", "Product")
    Product.objects.filter(beyond_use_hours__gt=MAX_BEYOND_USE_HOURS).update(beyond_use_hours=MAX_BEYOND_USE_HOURS)


class Migration(migrations.Migration):

    dependencies = [
        ('clinics', '0001_initial'),
        ('formulary', '0002_seed_catalogue'),
        ('patients', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='regulatorystatus',
            name='clinic',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='regulatory_statuses', to='clinics.clinic'),
        ),
        migrations.AddField(
            model_name='stockmovement',
            name='patient',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='lot_administrations', to='patients.patient'),
        ),
        migrations.AddIndex(
            model_name='regulatorystatus',
            index=models.Index(fields=['clinic', 'jurisdiction'], name='regstatus_clinic_idx'),
        ),
        migrations.AddIndex(
            model_name='stockmovement',
            index=models.Index(condition=models.Q(('patient__isnull', False)), fields=['lot', 'patient'], name='movement_lot_patient_idx'),
        ),
        migrations.AddIndex(
            model_name='stockmovement',
            index=models.Index(condition=models.Q(('patient__isnull', False)), fields=['patient', '-at'], name='movement_patient_idx'),
        ),
        migrations.RunPython(cap_beyond_use, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='product',
            constraint=models.CheckConstraint(condition=models.Q(('beyond_use_hours__lte', 8760)), name='product_beyond_use_at_most_a_year'),
        ),
        migrations.AddConstraint(
            model_name='stockmovement',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'administered'), ('patient__isnull', False)), models.Q(models.Q(('kind', 'administered'), _negated=True), ('patient__isnull', True)), _connector='OR'), name='movement_patient_iff_administered'),
        ),
    ]
