from django.urls import path

from mesoclinic.screening import views

app_name = "screening"

urlpatterns = [
    path("portal/intake/", views.portal_intake, name="portal_intake"),
    path("invitation/<uidb64>/<token>/", views.InvitationView.as_view(), name="invitation"),
    path("patients/<int:patient_id>/", views.screening_page, name="screening"),
    path("patients/<int:patient_id>/panel/", views.panel, name="panel"),
    path("patients/<int:patient_id>/intake/", views.desk_intake, name="desk_intake"),
    path("patients/<int:patient_id>/intake/history/", views.history, name="history"),
    path("patients/<int:patient_id>/intake/invite/", views.invite, name="invite"),
    path("medicines/", views.medicines, name="medicines"),
]
