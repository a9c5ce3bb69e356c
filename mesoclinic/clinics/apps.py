from django.apps import AppConfig


class ClinicsConfig(AppConfig):
    name = "mesoclinic.clinics"
    verbose_name = "Clinics"
