from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "mesoclinic.consent"
    label = "consent"
    verbose_name = "Informed consent and patient education"

    def ready(self) -> None:
        # R-PRE-CONSENT: the check-in gate asks this app whether a valid consent covers the plan.
        from mesoclinic.consent.services import consent_gate
        from mesoclinic.treatments.services import register_gate_hook

        register_gate_hook("no-consent", consent_gate)
