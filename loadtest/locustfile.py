"""Load test: patients reading their reports, radiologists working the worklist and
scrolling through slices in the viewer, and uploads through the API, all at once.

Run by loadtest/run.sh (gunicorn + PostgreSQL + Redis + one Celery worker on 127.0.0.1).
The portal runs with production settings, so it believes only HTTPS: every request says
X-Forwarded-Proto: https (as the TLS proxy would) and the session/CSRF cookies, which are
marked Secure, are copied into the jar for plain HTTP on 127.0.0.1.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import re
from pathlib import Path

from locust import HttpUser, between, task

SEED = json.loads((Path(os.environ["LOADTEST_VAR"]) / "seed.json").read_text())
HTTPS = {"X-Forwarded-Proto": "https"}
_patients = itertools.cycle(SEED["patients"])
_radiologists = itertools.cycle(SEED["radiologists"])
_files = itertools.cycle(SEED["upload_files"])


class PortalUser(HttpUser):
    abstract = True

    def log_in(self, email: str) -> None:
        host = self.host.split("://", 1)[1]
        page = self.client.get("/accounts/login/", headers=HTTPS, name="/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        self._copy_cookies()
        response = self.client.post(
            "/accounts/login/",
            data={"username": email, "password": SEED["password"], "csrfmiddlewaretoken": token},
            headers={**HTTPS, "Referer": f"https://{host}/accounts/login/"},
            allow_redirects=False,
            name="/accounts/login/ (POST)",
        )
        if response.status_code != 302:
            raise RuntimeError(f"login failed for {email}: {response.status_code}")
        self._copy_cookies()

    def _copy_cookies(self) -> None:
        jar = self.client.cookies
        values = {c.name: c.value for c in jar}
        jar.clear()
        for name, value in values.items():
            jar.set(name, value, secure=False)

    def get(self, url: str, name: str, **kwargs):
        with self.client.get(url, headers=HTTPS, name=name, allow_redirects=False, catch_response=True, **kwargs) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code} for {url}")
            elif r.headers.get("Content-Type", "").startswith("text/html") and "Log in" in r.text[:2000] and "/accounts/login" in r.url:
                r.failure("sent to the login page")
            return r


class Patient(PortalUser):
    weight = 8
    wait_time = between(1, 3)

    def on_start(self) -> None:
        account = next(_patients)
        self.reports = account["reports"]
        self.log_in(account["email"])

    @task(3)
    def home(self) -> None:
        self.get("/patient/", name="page: /patient/")

    @task(4)
    def report(self) -> None:
        self.get(f"/patient/reports/{random.choice(self.reports)}/", name="page: /patient/reports/[id]/")

    @task(1)
    def history(self) -> None:
        self.get("/patient/history/", name="page: /patient/history/")


class Radiologist(PortalUser):
    weight = 10
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        self.log_in(next(_radiologists))

    @task(2)
    def worklist(self) -> None:
        self.get("/radiology/", name="page: /radiology/ (worklist)")

    @task(2)
    def viewer(self) -> None:
        self.get(f"/radiology/studies/{random.choice(SEED['worklist_studies'])}/", name="page: /radiology/studies/[id]/")

    @task(8)
    def scroll_slices(self) -> None:
        # The viewer loads the slice under the cursor and its neighbours as the user scrolls.
        for pk in random.sample(SEED["worklist_slices"], 3):
            self.get(f"/scans/slices/{pk}/image.png", name="image: /scans/slices/[id]/image.png")

    @task(1)
    def thumbnails(self) -> None:
        self.get(f"/scans/slices/{random.choice(SEED['worklist_slices'])}/thumbnail.png",
                 name="image: /scans/slices/[id]/thumbnail.png")


class Uploader(HttpUser):
    weight = 2
    wait_time = between(4, 8)

    @task
    def upload(self) -> None:
        path = Path(next(_files))
        with path.open("rb") as handle, self.client.post(
            "/api/uploads/",
            headers={**HTTPS, "Authorization": f"Token {SEED['uploader_token']}"},
            data={"patient": str(random.choice(SEED["upload_patients"][1:]))},
            files={"files": (path.name, handle, "image/jpeg")},
            name="api: POST /api/uploads/",
            catch_response=True,
        ) as r:
            if r.status_code != 201:
                r.failure(f"{r.status_code}: {r.text[:200]}")
