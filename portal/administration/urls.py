from django.urls import path

from portal.administration import hospital, views

app_name = "administration"
urlpatterns = [
    path("patients/", views.patients, name="patients"),
    path("patients/new-account/", views.patient_account_create, name="patient_account_create"),
    path("patients/<int:pk>/", views.patient_detail, name="patient_detail"),
    path("patients/<int:pk>/link/", views.patient_link, name="patient_link"),
    path("patients/<int:pk>/unlink/", views.patient_unlink, name="patient_unlink"),
    path("dicom/nodes/", hospital.nodes, name="dicom_nodes"),
    path("dicom/nodes/<int:pk>/echo/", hospital.node_echo, name="dicom_node_echo"),
    path("dicom/sends/", hospital.sends, name="dicom_sends"),
    path("dicom/sends/<int:pk>/resend/", hospital.resend, name="dicom_resend"),
    path("dicom/unmatched/", hospital.unmatched, name="unmatched"),
    path("dicom/unmatched/<int:pk>/", hospital.unmatched_detail, name="unmatched_detail"),
    path("dicom/unmatched/<int:pk>/create/", hospital.unmatched_create, name="unmatched_create"),
    path("dicom/unmatched/<int:pk>/link/", hospital.unmatched_link, name="unmatched_link"),
    path("dicom/unmatched/<int:pk>/reject/", hospital.unmatched_reject, name="unmatched_reject"),
]
