from django.urls import path

from mesoclinic.safety import views

app_name = "safety"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("patients/<int:patient_id>/panel/", views.panel, name="panel"),
    path("patients/<int:patient_id>/events/new/", views.event_new, name="event_new"),
    path("events/<int:event_id>/", views.event_detail, name="event"),
    path("events/<int:event_id>/edit/", views.event_edit, name="event_edit"),
    path("events/<int:event_id>/review/", views.event_review, name="event_review"),
    path("events/<int:event_id>/retract/", views.event_retract, name="event_retract"),
    path("events/<int:event_id>/photo/", views.event_photo, name="event_photo"),
    path("events/<int:event_id>/photo/add/", views.event_photo_add, name="event_photo_add"),
    path("follow-ups/<int:follow_up_id>/close/", views.follow_up_close, name="follow_up_close"),
    path("signals/", views.signals, name="signals"),
    path("signals/scan/", views.scan, name="scan"),
    path("signals/<int:signal_id>/", views.signal_detail, name="signal"),
    path("signals/<int:signal_id>/review/", views.signal_review, name="signal_review"),
    path("report/", views.report, name="report"),
    path("report.csv", views.report_csv, name="report_csv"),
    path("report.pdf", views.report_pdf, name="report_pdf"),
    path("settings/", views.settings_page, name="settings"),
    path("portal/", views.portal, name="portal"),
]
