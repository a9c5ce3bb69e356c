from django.urls import path

from mesoclinic.outcomes import views

app_name = "outcomes"

urlpatterns = [
    path("settings/", views.settings_page, name="settings"),
    path("patients/<int:patient_id>/panel/", views.panel, name="panel"),
    path("plans/<int:plan_id>/", views.progress, name="progress"),
    path("plans/<int:plan_id>/assess/", views.assess, name="assess"),
    path("plans/<int:plan_id>/compare/", views.compare, name="compare"),
    path("plans/<int:plan_id>/consent/", views.consent, name="consent"),
    path("plans/<int:plan_id>/report.pdf", views.report, name="report"),
    path("plans/<int:plan_id>/charts/<str:key>.svg", views.chart, name="chart"),
    path("assessments/<int:assessment_id>/", views.assessment_detail, name="assessment"),
    path("assessments/<int:assessment_id>/photos/", views.photo_upload, name="photo_upload"),
    path("assessments/<int:assessment_id>/capture/<slug:view>/", views.capture, name="capture"),
    path("photos/<int:photo_id>/image", views.photo_image, name="photo"),
    path("portal/", views.portal, name="portal"),
]
