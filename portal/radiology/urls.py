from django.urls import path

from portal.radiology import views

app_name = "radiology"
urlpatterns = [
    path("", views.worklist, name="worklist"),
]
