from django.urls import path

from portal.uploads import views

app_name = "uploads"
urlpatterns: list = []
