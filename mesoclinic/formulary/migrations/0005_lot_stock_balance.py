"""``Lot.stock_ml``: the sum of the lot's movements, stored so the stock screen reads the lots with stock left
instead of adding up the clinic's whole history; filled here from the movements of existing lots. And an index
of the vials still open."""

from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Round


def fill_stock(apps, schema_editor):
    Lot = apps.get_model("formulary", "Lot")
    StockMovement = apps.get_model("formulary", "StockMovement")
    total = (
        StockMovement.objects.filter(lot_id=OuterRef("pk"))
        .order_by()
        .values("lot_id")
        .annotate(total=Sum("quantity_ml"))
        .values("total")
    )
    output = models.DecimalField(max_digits=15, decimal_places=3)
    # Rounded to the microlitre: SQLite adds decimals as floating point numbers.
    Lot.objects.update(
        stock_ml=Round(
            Coalesce(Subquery(total, output_field=output), Value(0), output_field=output),
            3,
            output_field=output,
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("formulary", "0004_submental_fat"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="lot",
            name="stock_ml",
            field=models.DecimalField(
                decimal_places=3, default=0, editable=False, max_digits=15, verbose_name="stock (mL)"
            ),
        ),
        migrations.RunPython(fill_stock, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="vialopening",
            index=models.Index(
                condition=models.Q(("closed_at__isnull", True)), fields=["lot"], name="vial_open_idx"
            ),
        ),
    ]
