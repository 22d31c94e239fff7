from django.urls import path

from portal.patient import views

app_name = "patient"
urlpatterns = [
    path("", views.home, name="home"),
]
