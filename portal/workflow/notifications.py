"""E-mail to the patient when a report is released: "a new report is ready", with a link to
log in and nothing else. E-mail is not a private channel, so the message never carries the
finding, the kind of scan, a date or a name of a condition. Sent through Django's e-mail
backend (the console in development) after the sign-off commits."""
from __future__ import annotations

import logging
from typing import Any

from django.core.mail import send_mail
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.audit import record
from scans.models import Review

log = logging.getLogger(__name__)


def notify_report_ready(review: Review, *, request: Any = None) -> bool:
    """E-mail the patient's own account, if it has one and is active. Returns whether it was
    sent; a failing mail server is logged, never undoes the sign-off."""
    patient = review.study.patient
    user = patient.user
    if user is None or not user.is_active or not user.email:
        return False
    path = reverse("patient:home")
    link = request.build_absolute_uri(path) if request is not None else path
    subject = _("A new report is ready in your patient portal")
    body = _(
        "Hello,\n\n"
        "A new report is ready for you in the patient portal. Log in to read it:\n%(link)s\n\n"
        "For your privacy this e-mail does not say anything about the report itself.\n"
        "If you did not expect this message, please contact your clinic.\n"
    ) % {"link": link}
    try:
        send_mail(subject, body, None, [user.email])
    except OSError as exc:  # SMTP down: the report is released anyway and shown on login
        log.warning("report-ready e-mail for study %s not sent: %s", review.study_id, exc)
        return False
    record("patient.notify.report_ready", request=request, obj=review, patient_id=patient.pk,
           study_id=review.study_id, version=review.version)
    return True
