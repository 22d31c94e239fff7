from django.apps import AppConfig


class HospitalConfig(AppConfig):
    name = "hospital"
    default_auto_field = "django.db.models.BigAutoField"
