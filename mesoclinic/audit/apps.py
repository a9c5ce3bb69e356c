from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "mesoclinic.audit"
    verbose_name = "Audit trail"
