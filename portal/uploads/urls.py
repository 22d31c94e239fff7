from django.urls import path

from portal.uploads import status, views

app_name = "uploads"
urlpatterns: list = [
    path("", views.upload, name="upload"),
    path("studies/<int:pk>/", views.study, name="study"),
    path("studies/<int:pk>/status.json", status.study_status, name="study_status"),
]
