from django.urls import path

from scans import views

app_name = "scans"
urlpatterns: list = []
