"""Creates one demo account per role (and the demo patient's record) and prints them.

Idempotent: running it again resets the demo passwords and changes nothing else.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Role, User
from scans.models import Patient

DEMO_ACCOUNTS = [
    ("radiologist@example.org", "Dr Rita Radiologist", Role.RADIOLOGIST),
    ("admin@example.org", "Ada Administrator", Role.ADMINISTRATOR),
    ("patient@example.org", "Pat Patient", Role.PATIENT),
]
DEMO_PASSWORD = "demo-portal-2025!"
DEMO_PATIENT_MRN = "DEMO-0001"


class Command(BaseCommand):
    help = "Create demo accounts for each role and print their credentials."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password", default=DEMO_PASSWORD)

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        password = options["password"]
        for email, name, role in DEMO_ACCOUNTS:
            user, _ = User.objects.get_or_create(email=email, defaults={"full_name": name, "role": role})
            user.role = role
            user.full_name = name
            user.is_active = True
            user.is_staff = role == Role.ADMINISTRATOR
            user.set_password(password)
            user.save()
            if role == Role.PATIENT:
                Patient.objects.update_or_create(
                    mrn=DEMO_PATIENT_MRN, defaults={"full_name": name, "user": user}
                )
        self.stdout.write("Demo accounts (development only):")
        for email, _, role in DEMO_ACCOUNTS:
            self.stdout.write(f"  {role.label:<14} {email:<28} password: {password}")
