from django.urls import path

from mesoclinic.treatments import views

app_name = "treatments"

urlpatterns = [
    path("protocols/", views.protocol_list, name="protocols"),
    path("protocols/<int:protocol_id>/", views.protocol_detail, name="protocol"),
    path("protocols/<int:protocol_id>/copy/", views.protocol_copy, name="protocol_copy"),
    path("protocols/<int:protocol_id>/edit/", views.protocol_edit, name="protocol_edit"),
    path("patients/<int:patient_id>/plans/panel/", views.plans_panel, name="plans_panel"),
    path("patients/<int:patient_id>/plans/new/", views.plan_new, name="plan_new"),
    path("plans/<int:plan_id>/", views.plan_detail, name="plan"),
    path("plans/<int:plan_id>/edit/", views.plan_edit, name="plan_edit"),
    path("plans/<int:plan_id>/activate/", views.plan_activate, name="plan_activate"),
    path("plans/<int:plan_id>/end/", views.plan_end, name="plan_end"),
    path("plans/<int:plan_id>/improvement/", views.plan_improvement, name="plan_improvement"),
    path("plans/<int:plan_id>/check-in/", views.check_in, name="check_in"),
    path("sessions/<int:session_id>/", views.session_detail, name="session"),
    path("sessions/<int:session_id>/chart/", views.chart, name="chart"),
    path("sessions/<int:session_id>/sign/", views.sign, name="sign"),
    path("sessions/<int:session_id>/amend/", views.amend, name="amend"),
    path("sessions/<int:session_id>/cosign/", views.cosign, name="cosign"),
    path("sessions/<int:session_id>/aftercare/", views.aftercare, name="aftercare"),
    path("sessions/<int:session_id>/aftercare.pdf", views.aftercare_download, name="aftercare_pdf"),
    path("cosign/", views.cosign_queue, name="cosign_queue"),
    path("portal/", views.portal_treatment, name="portal"),
]
