"""python manage.py import_scans PATH --patient MRN [--create-patient] [--allow-mismatch]

Imports a file, a folder or a zip for one patient. Progress goes to stdout line by line,
then one line per series with its AI outcome (the class, the out-of-scope reason, or that it
is still queued); the LAST line is one JSON object:
{"studies": [{"study_instance_uid": ..., "series": [{"series_instance_uid": ..., "slices": N, "ai": ...}]}],
 "rejected": [{"file": ..., "reason": ...}]}
Bad input (a damaged file, a bomb, a patient mismatch) is a CommandError naming the file.
When the broker cannot be reached the work is still recorded (queued jobs): the command
warns on stderr that it is not yet sent (the sweeper sends it) and exits 0.
"""
from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.workflow.dispatch import unsent_messages
from portal.workflow.ingest import submit_upload
from scans.errors import ScanError
from scans.ingest_files import sources_from_path
from scans.models import Patient, Series


def ai_outcome(series: Series, processed: bool) -> str:
    """The class and confidence, the out-of-scope reason, or why there is no result yet."""
    prediction = series.predictions.order_by("-created_at", "-id").first()
    if prediction is not None:
        return prediction.out_of_scope_reason or f"{prediction.label} {prediction.confidence:.0%}"
    if series.scope_reason:
        return series.scope_reason
    return "queued for classification" if processed else "not classified (--no-process)"


class Command(BaseCommand):
    help = "Import DICOM/JPEG/PNG scans (a file, a folder or a zip) for one patient."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path")
        parser.add_argument("--patient", required=True, help="the patient's MRN")
        parser.add_argument("--create-patient", action="store_true", help="create the patient record if it does not exist")
        parser.add_argument(
            "--allow-mismatch", action="store_true", help="import even when the files' PatientID differs from the MRN"
        )
        parser.add_argument(
            "--no-process", action="store_true",
            help="store only; do not start AI processing now (where beat runs, the sweeper starts stored studies left without a job)",
        )

    def handle(self, *args, **options) -> None:
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"{path}: no such file or folder")
        mrn = options["patient"].strip()
        if not mrn:
            raise CommandError("--patient: an MRN is required")
        with unsent_messages() as unsent:
            result = self._import(path, mrn, options)
        if unsent:
            self.stderr.write(
                f"warning: the import is stored and {len(unsent)} processing job(s) are recorded, but their messages "
                "were not sent (the broker could not be reached); the sweeper sends them when it is back"
            )
        self._summary(result, processed=not options["no_process"])

    def _import(self, path: Path, mrn: str, options: dict):
        allow_mismatch = options["allow_mismatch"]
        with transaction.atomic():
            patient = Patient.objects.filter(mrn=mrn).first()
            if patient is None:
                if not options["create_patient"]:
                    raise CommandError(f"no patient with MRN {mrn} (use --create-patient to create one)")
                patient = Patient.objects.create(mrn=mrn)
                # The operator named this new, empty record for these files, so there is no
                # other patient's history they could be mixed into.
                allow_mismatch = True
                self.stdout.write(f"created patient {mrn}; PatientID in the files is not checked against a new record")
            sources = sources_from_path(path)
            self.stdout.write(f"importing {len(sources)} file(s) from {path} for patient {mrn}")
            try:
                result = submit_upload(
                    sources,
                    patient=patient,
                    user=None,
                    allow_mismatch=allow_mismatch,
                    process=not options["no_process"],
                    progress=self.stdout.write,
                )
            except ScanError as exc:  # the atomic block rolls back a patient created above
                raise CommandError(f"{exc.filename}: {exc.message}") from exc
        return result

    def _summary(self, result, processed: bool) -> None:
        payload = result.as_json()
        outcomes = {s.pk: ai_outcome(s, processed) for s in Series.objects.filter(study__in=result.studies)}
        summary = {
            "studies": [
                {
                    "study_instance_uid": s["study_instance_uid"],
                    "series": [{"series_instance_uid": x["series_instance_uid"], "slices": x["slices"],
                                "ai": outcomes.get(x["id"], "")} for x in s["series"]],
                }
                for s in payload["studies"]
            ],
            "rejected": payload["rejected"],
        }
        self.stdout.write(f"{len(result.new_slice_ids)} new slice(s) stored")
        for study in summary["studies"]:
            for x in study["series"]:
                self.stdout.write(f"series {x['series_instance_uid']} ({x['slices']} slices): AI: {x['ai']}")
        self.stdout.write(json.dumps(summary))
