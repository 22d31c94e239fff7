from django.urls import path

from portal.patient import views

app_name = "patient"
urlpatterns = [
    path("", views.home, name="home"),
    path("reports/<int:pk>/", views.report, name="report"),
    path("reports/<int:pk>/pdf/", views.report_pdf, name="report_pdf"),
    path("history/", views.history, name="history"),
]
