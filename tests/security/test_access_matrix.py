"""Access-control matrix: every URL pattern × every kind of user, with the expected status.

The list of endpoints is GENERATED from the URL configuration (get_resolver(), walked
recursively, including api/ and django-admin/). Each one must have an entry in RULES: a
new endpoint without a rule fails `test_endpoint_follows_its_rule[<name>]`, and a rule for
an endpoint that no longer exists fails `test_no_stale_rules`.

The objects in URLs belong to patient Alice. Patient Bob must get 404 for every one of
them and never see Alice's identifiers on any page. Every endpoint that takes one of
Alice's studies (or its series/slices) is run a second time with an UNSIGNED study of
hers: a patient never sees a study, its images or its report before a radiologist signs it.
Views of reports, studies and slice images must write their audit row (Rule.audit).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import AuditEvent, User
from scans.models import StudyStatus
from tests.conftest import TEST_PASSWORD
from tests.factories import make_study

ROLES = ("anonymous", "alice", "bob", "radiologist", "deactivated", "administrator")
Expected = int | frozenset


# --- Endpoints from the URL configuration ----------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str  # namespaced URL name, or "<unnamed>:<route>"
    route: str
    kwargs: tuple[str, ...]


def _walk(resolver: URLResolver, prefix: str = "", namespaces: tuple[str, ...] = ()) -> list[Endpoint]:
    found: list[Endpoint] = []
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _walk(pattern, route, namespaces + ((pattern.namespace,) if pattern.namespace else ()))
        elif isinstance(pattern, URLPattern):
            name = ":".join(namespaces + (pattern.name,)) if pattern.name else f"<unnamed>:{route}"
            kwargs = tuple(pattern.pattern.converters) or tuple(re.findall(r"\(\?P<(\w+)>", str(pattern.pattern)))
            found.append(Endpoint(name, route, kwargs))
    return found


ENDPOINTS = {e.name: e for e in _walk(get_resolver())}


# --- Rules -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    expect: dict[str, Expected]
    method: str = "GET"
    # Builds the URL kwargs from the world of test objects (w.study, w.patient, ...).
    kwargs: Callable[[Any], dict] | None = None
    data: dict = field(default_factory=dict)
    # Takes one of Alice's studies: also run against her unsigned study.
    study_data: bool = False
    # Audit action each successful request must write (with the requesting user as actor).
    audit: str | None = None
    query: str = ""
    # Overrides of the expectations for the unsigned-study pass (e.g. no report yet for staff).
    unsigned: dict = field(default_factory=dict)


def _roles(anonymous, alice, bob, radiologist, administrator, deactivated=None) -> dict[str, Expected]:
    values = {"anonymous": anonymous, "alice": alice, "bob": bob, "radiologist": radiologist,
              "administrator": administrator, "deactivated": anonymous if deactivated is None else deactivated}
    return {k: frozenset(v) if isinstance(v, (set, frozenset, tuple, list)) else v for k, v in values.items()}


# Pages (session): anonymous and deactivated go to the login page (302).
def public(ok=200) -> dict:
    return _roles(ok, ok, ok, ok, ok, ok)


def logged_in(ok=302) -> dict:
    return _roles(302, ok, ok, ok, ok)


def patients_only(ok=200) -> dict:
    return _roles(302, ok, ok, 404, 404)


def staff_only(ok=200, admin_ok=None) -> dict:
    return _roles(302, 404, 404, ok, ok if admin_ok is None else admin_ok)


def reporters_only(ok) -> dict:
    """Sign, amend, notes, explanations: radiologists only (User.may_report). Administrators
    see the study but are refused (403); everyone else gets 404 as for any staff page."""
    return _roles(302, 404, 404, ok, 403)


def admins_only(ok=200) -> dict:
    return _roles(302, 404, 404, 404, ok)


def alices(ok=200, staff_ok=None) -> dict:
    """Alice's object: Alice and staff may, Bob gets 404."""
    staff = ok if staff_ok is None else staff_ok
    return _roles(302, ok, 404, staff, staff)


# API (token/session): anonymous and deactivated get 401.
def api_logged_in(ok=200) -> dict:
    return _roles(401, ok, ok, ok, ok)


def api_alices(ok=200, staff_ok=None) -> dict:
    staff = ok if staff_ok is None else staff_ok
    return _roles(401, ok, 404, staff, staff)


def api_reporters_only(ok) -> dict:
    return _roles(401, 404, 404, ok, 403)


STUDY = lambda w: {"pk": w.study.pk}  # noqa: E731
PATIENT = lambda w: {"pk": w.patient.pk}  # noqa: E731
TARGET_USER = lambda w: {"pk": w.target_user.pk}  # noqa: E731
SLICE = lambda w: {"pk": w.slice.pk}  # noqa: E731
SERIES = lambda w: {"pk": w.series.pk}  # noqa: E731
REVIEW_STATES = {200, 302, 400, 409}  # staff writes on a study: done, or refused as bad input/state

RULES: dict[str, Rule] = {
    # Landing and health.
    "home": Rule(logged_in(302)),
    "healthz": Rule(public(200)),
    "favicon": Rule(public(301)),
    # Accounts and the administrators' area.
    "accounts:login": Rule(_roles(200, 302, 302, 302, 302, 200)),
    "accounts:logout": Rule(public(302), method="POST"),
    "accounts:set_password": Rule(public(200), kwargs=lambda w: {"uidb64": "MQ", "token": "bad-token"}),
    "accounts:admin_home": Rule(admins_only(200)),
    "accounts:user_create": Rule(admins_only(200)),
    "accounts:user_detail": Rule(admins_only(200), kwargs=TARGET_USER),
    "accounts:user_send_link": Rule(admins_only(302), method="POST", kwargs=TARGET_USER),
    "accounts:user_reset_password": Rule(admins_only(302), method="POST", kwargs=TARGET_USER),
    "accounts:user_deactivate": Rule(admins_only(302), method="POST", kwargs=TARGET_USER),
    "accounts:user_reactivate": Rule(admins_only(302), method="POST", kwargs=TARGET_USER),
    "accounts:audit_log": Rule(admins_only(200)),
    "administration:patients": Rule(admins_only(200)),
    "administration:patient_account_create": Rule(admins_only(200)),
    "administration:patient_detail": Rule(admins_only(200), kwargs=PATIENT),
    "administration:patient_link": Rule(admins_only(302), method="POST", kwargs=PATIENT),
    "administration:dicom_nodes": Rule(admins_only(200)),
    "administration:dicom_node_echo": Rule(admins_only(302), method="POST", kwargs=lambda w: {"pk": w.dicom_node.pk}),
    "administration:dicom_sends": Rule(admins_only(200)),
    "administration:dicom_resend": Rule(admins_only(302), method="POST", kwargs=lambda w: {"pk": w.dicom_send.pk}),
    "administration:unmatched": Rule(admins_only(200)),
    "administration:unmatched_detail": Rule(admins_only(200), kwargs=lambda w: {"pk": w.unmatched.pk}),
    "administration:unmatched_create": Rule(admins_only(302), method="POST", kwargs=lambda w: {"pk": w.unmatched.pk}),
    "administration:unmatched_link": Rule(admins_only(302), method="POST", kwargs=lambda w: {"pk": w.unmatched.pk}),
    "administration:unmatched_reject": Rule(admins_only(302), method="POST", kwargs=lambda w: {"pk": w.unmatched.pk}),
    "administration:patient_unlink": Rule(admins_only(302), method="POST", kwargs=lambda w: {"pk": w.spare_patient.pk}),
    # Patient area.
    "patient:home": Rule(patients_only(200), audit="patient.reports.list"),
    # Radiology (clinical staff; any other user gets 404).
    "radiology:worklist": Rule(staff_only(200), audit="radiology.worklist.view"),
    "radiology:study": Rule(staff_only(200), kwargs=STUDY, study_data=True, audit="radiology.study.view"),
    "radiology:sign_off": Rule(reporters_only(REVIEW_STATES), method="POST", kwargs=STUDY, study_data=True),
    "radiology:amend": Rule(reporters_only(REVIEW_STATES), method="POST", kwargs=STUDY, study_data=True),
    "radiology:add_note": Rule(reporters_only(REVIEW_STATES), method="POST", kwargs=STUDY, study_data=True),
    "radiology:regenerate_explanation": Rule(reporters_only(REVIEW_STATES), method="POST", kwargs=STUDY, study_data=True),
    "radiology:patient_history": Rule(staff_only(200), kwargs=PATIENT, audit="radiology.patient_history.view"),
    "patient:report": Rule(_roles(302, 200, 404, 404, 404), kwargs=STUDY, study_data=True, audit="patient.report.view"),
    "patient:report_pdf": Rule(_roles(302, 200, 404, 404, 404), kwargs=STUDY, study_data=True, audit="patient.report.pdf"),
    "patient:history": Rule(patients_only(200), audit="patient.history.view"),
    # Scan files: only through permission-checked views.
    "scans:slice_image": Rule(alices(200), kwargs=SLICE, study_data=True, audit="slice.view"),
    "scans:slice_thumbnail": Rule(alices(200), kwargs=SLICE, study_data=True, audit="slice.thumbnail"),
    "scans:slice_heatmap": Rule(alices(200), kwargs=SLICE, study_data=True, audit="slice.heatmap"),
    "scans:slice_tags": Rule(staff_only(200), kwargs=SLICE, study_data=True, audit="slice.tags"),
    "scans:series_export": Rule(staff_only(200), kwargs=SERIES, study_data=True, audit="series.export"),
    # Uploads: patients (own record) and staff.
    "uploads:upload": Rule(logged_in(200)),
    "uploads:study": Rule(staff_only(200), kwargs=STUDY, study_data=True, audit="study.view"),
    "uploads:study_status": Rule(alices(200), kwargs=STUDY, study_data=True),
    "api:uploads": Rule(api_logged_in(400), method="POST"),
    # REST API.
    "api:token": Rule(public(400), method="POST"),
    "api:token_list": Rule(api_logged_in(200)),
    # Alice's token: she revokes it (204); nobody else can see it exists (404).
    "api:token_detail": Rule(_roles(401, 204, 404, 404, 404), method="DELETE", kwargs=lambda w: {"pk": w.alice_token.pk}),
    "api:patient_list": Rule(api_logged_in(200)),
    "api:patient_detail": Rule(api_alices(200), kwargs=PATIENT, audit="api.patient.view"),
    "api:study_list": Rule(api_logged_in(200)),
    "api:study_detail": Rule(api_alices(200), kwargs=STUDY, study_data=True, audit="api.study.view"),
    "api:study_report": Rule(api_alices(200), kwargs=STUDY, study_data=True, audit="api.report.view",
                             unsigned={"radiologist": 404, "administrator": 404}),
    "api:study_sr": Rule(api_alices(200), kwargs=STUDY, study_data=True, audit="api.report.sr",
                         unsigned={"radiologist": 404, "administrator": 404}),
    "api:study_fhir": Rule(api_alices(200), kwargs=STUDY, study_data=True, audit="api.report.fhir",
                           unsigned={"radiologist": 404, "administrator": 404}),
    "api:study_notes": Rule(api_reporters_only(400), method="POST", kwargs=STUDY, study_data=True),
    "api:study_reviews": Rule(api_reporters_only(400), method="POST", kwargs=STUDY, study_data=True),
    "api:schema": Rule(public(200)),
    "api:docs": Rule(public(200)),
    "api:not_found": Rule(public(404)),
}

# Django admin: one blanket rule. Only staff accounts (administrators) get past its login;
# everyone else is sent to it. Its own login page is public; its logout is POST-only.
ADMIN_PREFIX = "admin:"
ADMIN_NON_STAFF = frozenset({302})
ADMIN_KWARGS = {"object_id": "1", "app_label": "auth", "content_type_id": "1", "url": "nothing-here/"}


def _is_django_admin(endpoint: Endpoint) -> bool:
    return endpoint.name.startswith(ADMIN_PREFIX) or endpoint.route.startswith("django-admin/")


# --- The world of test objects -------------------------------------------------------------


@pytest.fixture
def world(patient_alice, patient_bob, radiologist, administrator, deactivated_user):
    from portal.workflow.review import sign_off

    alice_record = patient_alice.patient_record
    signed = make_study(alice_record, status=StudyStatus.AWAITING_REVIEW)
    sign_off(signed, user=radiologist, decision="confirm")
    unsigned = make_study(alice_record, status=StudyStatus.AWAITING_REVIEW)
    bob_study = make_study(patient_bob.patient_record, status=StudyStatus.AWAITING_REVIEW)
    sign_off(bob_study, user=radiologist, decision="confirm")
    from django.core.files.base import ContentFile

    from scans.models import Patient, SlicePrediction
    from tests.factories import png_bytes

    def objects(study):
        series = study.series.first()
        first = series.ordered_slices().first()
        for result in SlicePrediction.objects.filter(slice=first):
            result.heatmap.save("heatmap.png", ContentFile(png_bytes(seed=7)), save=True)
        return dict(study=study, series=series, slice=first, prediction=series.predictions.first())

    target = User.objects.create_user("target@example.org", TEST_PASSWORD, role="radiologist")
    spare_user = User.objects.create_user("spare@example.org", TEST_PASSWORD, role="patient")
    spare_patient = Patient.objects.create(mrn="MRN-SPARE", user=spare_user)
    from accounts import tokens

    alice_token, _ = tokens.issue(patient_alice, "matrix")
    base = dict(patient=alice_record, target_user=target, spare_patient=spare_patient, alice_token=alice_token,
                **_hospital_objects(signed),
                alice=patient_alice, bob=patient_bob, radiologist=radiologist,
                administrator=administrator, deactivated=deactivated_user)
    return SimpleNamespace(
        signed=SimpleNamespace(**base, **objects(signed)),
        unsigned=SimpleNamespace(**base, **objects(unsigned)),
        secrets=[alice_record.mrn, signed.study_instance_uid, unsigned.study_instance_uid],
    )


def _hospital_objects(signed_study) -> dict:
    """A remote node nobody listens on (port 7179), one send of the signed report to it, and a
    study waiting in the unmatched list."""
    from hospital.models import DicomSend, RemoteNode, UnmatchedStudy
    from scans.jobs import JobKind
    from scans.models import Job

    node = RemoteNode.objects.create(name="Nowhere", ae_title="NOWHERE", host="127.0.0.1", port=7179)
    job = Job.objects.create(kind=JobKind.SEND, study=signed_study)
    send = DicomSend.objects.create(job=job, node=node, review=signed_study.latest_review(), what="sr")
    unmatched = UnmatchedStudy.objects.create(patient_id="MRN-UNKNOWN", study_instance_uid="2.25.999")
    return dict(dicom_node=node, dicom_send=send, unmatched=unmatched)


def _client(role: str, w: Any) -> tuple[Client, Any]:
    client = Client()
    if role == "anonymous":
        return client, None
    user = getattr(w, role)
    client.force_login(user)  # for the deactivated user too: the session must not work
    return client, user


def _matches(expected: Expected, status: int) -> bool:
    return status in expected if isinstance(expected, frozenset) else status == expected


def _request(client: Client, method: str, url: str, data: dict):
    if method == "DELETE":
        return client.delete(url)
    return client.post(url, data) if method == "POST" else client.get(url)


def _check(endpoint: Endpoint, rule: Rule, w: Any, secrets: list[str], label: str, expect: dict) -> list[str]:
    url = reverse(endpoint.name, kwargs=rule.kwargs(w) if rule.kwargs else None) + rule.query
    problems = []
    for role in ROLES:
        client, user = _client(role, w)
        before = AuditEvent.objects.filter(action=rule.audit, actor=user).count() if rule.audit and user else 0
        response = _request(client, rule.method, url, rule.data)
        status = response.status_code
        if not _matches(expect[role], status):
            problems.append(f"{label} {role}: {rule.method} {url} → {status}, expected {expect[role]}")
            continue
        if status == 302 and expect[role] == 302 and role in ("anonymous", "deactivated") and endpoint.name not in (
            "accounts:logout",
        ):
            login = reverse("accounts:login")
            if not response["Location"].startswith(login):
                problems.append(f"{label} {role}: redirected to {response['Location']}, not the login page")
        if 200 <= status < 300 and rule.audit and user is not None:
            if AuditEvent.objects.filter(action=rule.audit, actor=user).count() <= before:
                problems.append(f"{label} {role}: {url} answered {status} but wrote no '{rule.audit}' audit row")
        if role == "bob" and status == 200 and not getattr(response, "streaming", False):
            body = response.content.decode(errors="replace")
            leaked = [s for s in secrets if s in body]
            if leaked:
                problems.append(f"{label} bob: {url} shows Alice's data {leaked}")
    return problems


def _unsigned_expect(rule: Rule) -> dict:
    """Against an unsigned study the patients get 404 (or the API's 404); staff as before."""
    expect = dict(rule.expect)
    expect["alice"] = 404
    expect["bob"] = 404
    expect.update(rule.unsigned)
    return expect


# --- Tests -------------------------------------------------------------------------------------

NON_ADMIN = sorted(name for name, e in ENDPOINTS.items() if not _is_django_admin(e))
ADMIN = sorted(name for name, e in ENDPOINTS.items() if _is_django_admin(e))


@pytest.mark.django_db
@pytest.mark.parametrize("name", NON_ADMIN)
def test_endpoint_follows_its_rule(name, world):
    endpoint = ENDPOINTS[name]
    rule = RULES.get(name)
    assert rule is not None, (
        f"New endpoint {name!r} ({endpoint.route}) has no access rule: add one to RULES in {__file__}"
    )
    problems = _check(endpoint, rule, world.signed, world.secrets, "signed", rule.expect)
    if rule.study_data:
        problems += _check(endpoint, rule, world.unsigned, world.secrets, "unsigned", _unsigned_expect(rule))
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ADMIN)
def test_django_admin_blanket_rule(name, world):
    endpoint = ENDPOINTS[name]
    kwargs = {k: ADMIN_KWARGS.get(k, "1") for k in endpoint.kwargs}
    url = reverse(endpoint.name, kwargs=kwargs) if not name.startswith("<unnamed>") else "/" + endpoint.route.replace(
        "<path:url>", ADMIN_KWARGS["url"]
    )
    problems = []
    for role in ROLES:
        client, user = _client(role, world.signed)
        response = client.get(url)
        status = response.status_code
        if role == "administrator":
            if status >= 500:
                problems.append(f"administrator: {url} → {status}")
            continue
        if name == "admin:login":
            ok = status == 200
        elif name == "admin:logout":
            ok = status in (302, 405) and "/django-admin/logout" not in response.get("Location", "")
        else:
            ok = status in ADMIN_NON_STAFF and "/django-admin/login/" in response.get("Location", "")
        if not ok:
            problems.append(f"{role}: GET {url} → {status} {response.get('Location', '')}")
    assert not problems, "\n".join(problems)


def test_no_stale_rules():
    stale = sorted(set(RULES) - set(ENDPOINTS))
    assert not stale, f"Rules for endpoints that no longer exist: {stale}"


def test_rules_never_let_bob_or_anonymous_read_alices_data():
    """The table itself: no rule on Alice's objects lets Bob, anonymous or the deactivated
    user succeed. (A typo in the table must not quietly allow a leak.)"""
    on_alices_objects = {name: rule for name, rule in RULES.items() if rule.kwargs in (STUDY, PATIENT, SLICE, SERIES)}
    assert len(on_alices_objects) >= 20, sorted(on_alices_objects)
    for name, rule in on_alices_objects.items():
        for role in ("bob", "anonymous", "deactivated"):
            expected = rule.expect[role]
            codes = expected if isinstance(expected, frozenset) else {expected}
            assert codes and all(c >= 300 for c in codes), f"{name}: {role} may get {expected}"


def test_generator_sees_every_area():
    routes = {e.route.split("/")[0] for e in ENDPOINTS.values()}
    assert {"accounts", "patient", "radiology", "api", "django-admin", "administration"} <= routes
    assert len(ADMIN) > 5
