from django.urls import path

from mesoclinic.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("access/", views.access, name="access"),
]
