"""Property-based fuzzing of the REST API from its own OpenAPI schema (schemathesis).

Every operation in /api/schema/ gets MAX_EXAMPLES generated requests (valid and invalid
inputs), sent in-process through the WSGI app with an administrator's API token. Each
response must not be a 5xx, must use a documented status code and content type, and must
match the documented body schema. test_total_cases then checks that at least 1,000 cases
ran in all. Hypothesis is derandomized, so CI runs are reproducible.
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks as openapi_checks

from accounts import tokens
from scans.models import StudyStatus
from tests.factories import make_study

MAX_EXAMPLES = 130
MIN_TOTAL_CASES = 1000
RAN: list[str] = []

CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
]


def _load_schema():
    from django.core.wsgi import get_wsgi_application

    # The schema view needs no database, so it can be fetched at collection time.
    return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


schema = _load_schema()


@pytest.fixture
def keep_test_connection():
    """Requests go straight through the WSGI handler, whose request_finished signal would
    close the database connection in the middle of the test's transaction (Django's own test
    client disconnects it the same way)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_token(keep_test_connection, db, administrator, patient_alice, radiologist):
    # Some data so that list and detail operations have something real to return.
    from portal.workflow.review import sign_off

    signed = make_study(patient_alice.patient_record, status=StudyStatus.AWAITING_REVIEW)
    sign_off(signed, user=radiologist, decision="confirm")
    make_study(patient_alice.patient_record, status=StudyStatus.AWAITING_REVIEW)
    return tokens.issue(administrator, "schemathesis")[1]


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_api_conforms_to_its_schema(case, api_token):
    RAN.append(case.operation.label)
    case.call_and_validate(headers={"Authorization": f"Token {api_token}"}, checks=CHECKS)


@pytest.mark.slow
def test_total_cases():
    if not RAN:
        pytest.skip("run together with test_api_conforms_to_its_schema")
    operations = len(set(RAN))
    print(f"schemathesis: {len(RAN)} generated cases over {operations} operations")
    assert len(RAN) >= MIN_TOTAL_CASES, f"only {len(RAN)} generated cases over {operations} operations"
