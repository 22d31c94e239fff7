from django.apps import AppConfig


class InferenceConfig(AppConfig):
    """Django wrapper around the framework-free ML core (management commands only)."""

    name = "inference"
    default_auto_field = "django.db.models.BigAutoField"
