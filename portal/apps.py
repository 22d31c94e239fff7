from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The project package is also an app: home views, workflow services, Celery tasks and
    the management commands that span apps."""

    name = "portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the Celery tasks in every process: the workflow sends them by name.
        from portal import tasks  # noqa: F401
        from portal.workflow import pacs  # noqa: F401 - connects its sign-off and preliminary receivers
