from django.urls import path

from portal.administration import views

app_name = "administration"
urlpatterns = [
    path("patients/", views.patients, name="patients"),
    path("patients/new-account/", views.patient_account_create, name="patient_account_create"),
    path("patients/<int:pk>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:pk>/link/", views.patient_link, name="patient_link"),
    path("patients/<int:pk>/unlink/", views.patient_unlink, name="patient_unlink"),
]
