"""Creates one demo account per role (and the demo patient's record), imports the demo
studies (portal.demo: one signed, one awaiting review, one out of scope) and prints the
accounts.

Idempotent: running it again resets the demo passwords; studies are imported only when the
demo patient has none.
"""
from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Role, User
from portal.demo import seed_studies
from scans.models import Patient

DEMO_ACCOUNTS = [
    ("radiologist@example.org", "Dr Rita Radiologist", Role.RADIOLOGIST),
    ("admin@example.org", "Ada Administrator", Role.ADMINISTRATOR),
    ("patient@example.org", "Pat Patient", Role.PATIENT),
]
DEMO_PASSWORD = "demo-portal-2025!"
DEMO_PATIENT_MRN = "DEMO-0001"
DEMO_BIRTH_DATE = dt.date(1974, 5, 17)


class Command(BaseCommand):
    help = "Create demo accounts for each role and demo studies, and print the credentials."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--password", default=DEMO_PASSWORD)
        parser.add_argument("--no-studies", action="store_true", help="create the accounts only, no demo studies")

    def handle(self, *args, **options) -> None:
        password = options["password"]
        accounts = self._accounts(password)
        if not options["no_studies"]:
            seed_studies(accounts[Role.PATIENT].patient_record, accounts[Role.RADIOLOGIST], self.stdout.write)
        self.stdout.write("Demo accounts (development only):")
        for email, _, role in DEMO_ACCOUNTS:
            self.stdout.write(f"  {role.label:<14} {email:<28} password: {password}")

    @transaction.atomic
    def _accounts(self, password: str) -> dict[str, User]:
        users = {}
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
                    mrn=DEMO_PATIENT_MRN,
                    defaults={"full_name": name, "user": user, "birth_date": DEMO_BIRTH_DATE, "sex": "F"},
                )
            users[role] = user
        return users
