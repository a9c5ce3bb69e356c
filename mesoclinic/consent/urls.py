from django.urls import path

from mesoclinic.consent import views

app_name = "consent"

urlpatterns = [
    path("", views.home, name="home"),
    path("templates/<int:template_id>/", views.template_detail, name="template"),
    path("templates/<int:template_id>/edit/", views.template_edit, name="template_edit"),
    path("education/<int:article_id>/", views.article_detail, name="article"),
    path("education/<int:article_id>/edit/", views.article_edit, name="article_edit"),
    path("settings/", views.terms, name="settings"),
    path("patients/<int:patient_id>/panel/", views.panel, name="panel"),
    path("plans/<int:plan_id>/", views.plan_page, name="plan"),
    path("plans/<int:plan_id>/sign/", views.sign, name="sign"),
    path("consents/<int:consent_id>/", views.consent_detail, name="consent"),
    path("consents/<int:consent_id>/countersign/", views.countersign, name="countersign"),
    path("consents/<int:consent_id>/withdraw/", views.withdraw, name="withdraw"),
    path("consents/<int:consent_id>/consent.pdf", views.pdf, name="pdf"),
    path("portal/", views.portal, name="portal"),
    path("portal/education/<slug:topic>/", views.portal_article, name="portal_article"),
]
