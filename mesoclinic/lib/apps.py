from django.apps import AppConfig


class LibConfig(AppConfig):
    name = "mesoclinic.lib"
    label = "mesoclinic_lib"
    verbose_name = "mesoclinic core"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from mesoclinic.lib.durability import assert_durable

        connection_created.connect(assert_durable, dispatch_uid="mesoclinic-assert-durable")
