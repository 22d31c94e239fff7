"""Login protection, sessions, CSRF and security headers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from tests.conftest import REPO_ROOT, TEST_PASSWORD

LOGIN = "/accounts/login/"
WRONG = "not-the-password-123"


def _login(client: Client, email: str, password: str, **extra):
    return client.post(LOGIN, {"username": email, "password": password}, **extra)


# --- Passwords ------------------------------------------------------------------------------------


def test_password_hashing_is_argon2_in_real_settings():
    from portal.settings import base

    assert base.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


@pytest.mark.django_db
def test_argon2_hash_and_password_rules(settings):
    from django.contrib.auth.hashers import make_password

    from portal.settings import base

    settings.PASSWORD_HASHERS = base.PASSWORD_HASHERS
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    assert make_password("x" * 20).startswith("argon2$argon2id$")
    for weak in ("short-pw-1", "password12345", "123456789012345"):
        with pytest.raises(ValidationError):
            validate_password(weak)
    validate_password("violet-otter-metronome-9")


# --- Lockout (django-axes, database handler) -------------------------------------------------------


@pytest.mark.django_db
def test_lockout_after_repeated_failures_across_clients(radiologist):
    assert settings.AXES_HANDLER.endswith("AxesDatabaseHandler")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        # A fresh client (new cookies, new session) every time: the count is not per session.
        _login(Client(), radiologist.email, WRONG)
    locked = _login(Client(), radiologist.email, TEST_PASSWORD)
    assert locked.status_code == 429
    assert "_auth_user_id" not in Client().session
    assert AuditEvent.objects.filter(action="login_failed", actor_email=radiologist.email).count() >= settings.AXES_FAILURE_LIMIT


@pytest.mark.django_db
def test_spoofed_x_forwarded_for_neither_escapes_nor_resets_lockout(radiologist):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), radiologist.email, WRONG, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    for spoof in ("198.51.100.7", "127.0.0.2, 10.0.0.1"):
        response = _login(Client(), radiologist.email, TEST_PASSWORD, HTTP_X_FORWARDED_FOR=spoof)
        assert response.status_code == 429, f"X-Forwarded-For {spoof} escaped the lockout"
    from axes.models import AccessAttempt

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}
    # The audit trail records the socket address too, never the spoofed header.
    assert set(AuditEvent.objects.filter(action="login_failed").values_list("client_ip", flat=True)) == {"127.0.0.1"}


@pytest.mark.django_db
def test_lockout_is_per_account_and_address(radiologist, administrator):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), radiologist.email, WRONG)
    # Another account from the same address, and the same account from another address, still log in.
    assert _login(Client(), administrator.email, TEST_PASSWORD).status_code == 302
    assert _login(Client(REMOTE_ADDR="192.0.2.10"), radiologist.email, TEST_PASSWORD).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_lockout_holds_across_processes(postgres, radiologist):
    """The failures happen in another Python process; this process sees the lockout, so it
    lives in the shared database, not in process memory."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    script = textwrap.dedent(f"""
        import django, json
        django.setup()
        from django.test import Client
        codes = [Client().post("{LOGIN}", {{"username": "{radiologist.email}", "password": "{WRONG}"}}).status_code
                 for _ in range({settings.AXES_FAILURE_LIMIT})]
        print(json.dumps(codes))
    """)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.test", "DATABASE_URL": url, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])[0] == 200  # wrong password: form shown again
    assert _login(Client(), radiologist.email, TEST_PASSWORD).status_code == 429


# --- Sessions -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_session_id_rotates_at_login(radiologist):
    client = Client()
    client.get(LOGIN)
    session = client.session
    session["before_login"] = True
    session.save()
    old_key = session.session_key
    client.cookies[settings.SESSION_COOKIE_NAME] = old_key
    assert _login(client, radiologist.email, TEST_PASSWORD).status_code == 302
    new_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert new_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    assert AuditEvent.objects.filter(action="login", actor=radiologist, client_ip="127.0.0.1").exists()


@pytest.mark.django_db
def test_session_expires_after_15_minutes_idle(radiologist):
    assert settings.SESSION_COOKIE_AGE == 15 * 60 and settings.SESSION_SAVE_EVERY_REQUEST
    client = Client()
    assert _login(client, radiologist.email, TEST_PASSWORD).status_code == 302
    worklist = reverse("radiology:worklist")
    start = timezone.now()
    real_now = timezone.now

    def at(minutes: float):
        return mock.patch("django.utils.timezone.now", return_value=start + timedelta(minutes=minutes))

    # Activity every 14 minutes keeps the session alive (each request pushes the expiry on)...
    for minutes in (14, 28, 42):
        with at(minutes):
            assert client.get(worklist).status_code == 200, f"logged out after {minutes} min with activity"
    # ...16 idle minutes end it.
    with at(42 + 16):
        response = client.get(worklist)
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))
    assert real_now() < start + timedelta(minutes=1)  # the clock was only pretended


def _logged_in(user) -> tuple[Client, str]:
    """A client logged in as `user`, and its session key."""
    client = Client()
    _login(client, user.email, TEST_PASSWORD)
    return client, client.cookies[settings.SESSION_COOKIE_NAME].value


def _assert_session_is_dead(key: str) -> None:
    """The session row is gone, and a client replaying its cookie is sent to the login page."""
    assert not Session.objects.filter(session_key=key).exists()
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = key
    response = replay.get(reverse("radiology:worklist"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.django_db
def test_logout_ends_the_session(radiologist):
    client, key = _logged_in(radiologist)
    assert client.post(reverse("accounts:logout")).status_code == 302
    _assert_session_is_dead(key)
    assert AuditEvent.objects.filter(action="logout", actor=radiologist).exists()


@pytest.mark.django_db
def test_deactivation_ends_the_session(radiologist):
    client, key = _logged_in(radiologist)
    assert client.get(reverse("radiology:worklist")).status_code == 200
    radiologist.is_active = False
    radiologist.save()
    response = client.get(reverse("radiology:worklist"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))
    assert not Session.objects.filter(session_key=key).exists()  # flushed by the middleware
    radiologist.is_active = True
    radiologist.save()
    _assert_session_is_dead(key)  # the old session stays dead after reactivation


@pytest.mark.django_db
def test_deactivated_user_cannot_log_in(deactivated_user):
    response = _login(Client(), deactivated_user.email, TEST_PASSWORD)
    assert response.status_code == 200 and "_auth_user_id" not in Client().session


# --- CSRF ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_login_requires_csrf_token(radiologist):
    client = Client(enforce_csrf_checks=True)
    assert _login(client, radiologist.email, TEST_PASSWORD).status_code == 403
    client.get(LOGIN)
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    assert client.post(LOGIN, {"username": radiologist.email, "password": TEST_PASSWORD, "csrfmiddlewaretoken": token}).status_code == 302


def _post_rules():
    from tests.security.test_access_matrix import RULES

    # api:token takes credentials in the body and sets no cookie: nothing for CSRF to protect.
    return sorted(name for name, rule in RULES.items() if rule.method == "POST" and name != "api:token")


@pytest.mark.django_db
@pytest.mark.parametrize("name", _post_rules())
def test_every_state_changing_endpoint_enforces_csrf(name, request):
    """Every POST endpoint of the matrix refuses a logged-in user's POST without a token."""
    from tests.security.test_access_matrix import ENDPOINTS, RULES

    world = request.getfixturevalue("world")
    rule = RULES[name]
    expect = rule.expect
    role = next(r for r in ("administrator", "radiologist", "alice") if not (isinstance(expect[r], int) and expect[r] >= 404))
    user = getattr(world.signed, role)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    url = reverse(ENDPOINTS[name].name, kwargs=rule.kwargs(world.signed) if rule.kwargs else None)
    response = client.post(url, rule.data)
    assert response.status_code == 403, f"{name} accepted a POST without a CSRF token ({response.status_code})"


from tests.security.test_access_matrix import world  # noqa: E402,F401  (fixture for the test above)


# --- Security headers ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_security_headers_on_pages_and_api(client):
    for url in (LOGIN, "/api/schema/", "/healthz"):
        response = client.get(url)
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"
        assert response["Cross-Origin-Resource-Policy"] == "same-origin"
        assert "camera=()" in response["Permissions-Policy"]


def test_production_settings_send_hsts_and_secure_cookies():
    """Import the real production settings in a fresh process and make an HTTPS request."""
    script = textwrap.dedent("""
        import json, django
        django.setup()
        from django.conf import settings
        from django.test import Client
        r = Client().get("/healthz", secure=True)
        plain = Client().get("/healthz")
        print(json.dumps({"status": r.status_code, "hsts": r.get("Strict-Transport-Security"),
                          "csp": r.get("Content-Security-Policy"), "xfo": r.get("X-Frame-Options"),
                          "redirect": plain.status_code, "location": plain.get("Location"),
                          "session_secure": settings.SESSION_COOKIE_SECURE, "csrf_secure": settings.CSRF_COOKIE_SECURE}))
    """)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.production",
        "DJANGO_SECRET_KEY": "p" * 64,
        "DJANGO_ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:5432/unused",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "PYTHONPATH": str(REPO_ROOT),
    }
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    assert result["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert result["xfo"] == "DENY" and "default-src 'self'" in result["csp"]
    assert result["redirect"] == 301 and result["location"].startswith("https://")
    assert result["session_secure"] and result["csrf_secure"]
