from django.urls import URLPattern

app_name = "formulary"

urlpatterns: list[URLPattern] = []
