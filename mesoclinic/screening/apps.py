from django.apps import AppConfig


class ScreeningConfig(AppConfig):
    name = "mesoclinic.screening"
    verbose_name = "Screening"
