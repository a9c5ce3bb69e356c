from django.apps import AppConfig


class SafetyConfig(AppConfig):
    name = "mesoclinic.safety"
    label = "safety"
    verbose_name = "Side effects, follow-up and safety signals"

    def ready(self) -> None:
        # R-PRE-BRUISE: the check-in gate asks this app whether bruising from the previous session is gone.
        from mesoclinic.safety.services import bruising_gate
        from mesoclinic.treatments.services import register_gate_hook

        register_gate_hook("bruising-unresolved", bruising_gate)
