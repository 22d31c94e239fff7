from django.apps import AppConfig


class ScansConfig(AppConfig):
    name = "scans"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.audit import register_patient_lookup

        register_patient_lookup(patients_matching)


def patients_matching(text: str) -> list[int]:
    """Records whose MRN is `text` (any case) or whose name contains it."""
    from django.db.models import Q

    from scans.models import Patient

    return list(Patient.objects.filter(Q(mrn__iexact=text) | Q(full_name__icontains=text)).values_list("pk", flat=True)[:200])
