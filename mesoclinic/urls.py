from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from mesoclinic import views
from mesoclinic.api import api

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("mesoclinic.accounts.urls")),
    path("patients/", include("mesoclinic.patients.urls")),
    path("portal/", include("mesoclinic.portal.urls")),
    path("screening/", include("mesoclinic.screening.urls")),
    path("formulary/", include("mesoclinic.formulary.urls")),
    path("treatments/", include("mesoclinic.treatments.urls")),
    path("consent/", include("mesoclinic.consent.urls")),
    path("outcomes/", include("mesoclinic.outcomes.urls")),
    path("scheduling/", include("mesoclinic.scheduling.urls")),
    path("safety/", include("mesoclinic.safety.urls")),  # issue 8
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]

# The benchmark's floor (docs/performance.md): routed only on the `make bench` server (BENCH_FLOOR=1).
if settings.BENCH_FLOOR:
    from mesoclinic.floor import floor

    urlpatterns.append(path("bench/floor", floor, name="bench-floor"))
