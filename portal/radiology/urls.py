from django.urls import path

from portal.radiology import views

app_name = "radiology"
urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("studies/<int:pk>/", views.study_detail, name="study"),
    path("studies/<int:pk>/sign-off/", views.sign_off, name="sign_off"),
    path("studies/<int:pk>/amend/", views.amend, name="amend"),
    path("studies/<int:pk>/notes/", views.add_note, name="add_note"),
    path("studies/<int:pk>/explanation/regenerate/", views.regenerate_explanation, name="regenerate_explanation"),
    path("patients/<int:pk>/history/", views.patient_history, name="patient_history"),
]
