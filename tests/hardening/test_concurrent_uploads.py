"""Issue 18: four uploads at once, on the embedded default (SQLite, `make run`'s threaded
server) and on PostgreSQL: every upload succeeds or gets a clear 4xx, none a 5xx. Before
WAL + immediate transactions + a busy timeout, three of four answered 500 "database is
locked" on SQLite."""
from __future__ import annotations

import threading

import pytest
import requests
from django.db import connection

from tests.conftest import skip_or_fail
from tests.hardening.server import SETUP_USERS, PortalServer, printed
from tests.ingest import builders as b

PORTS = {"sqlite": 7180, "postgresql": 7181}
# The PostgreSQL server process must see the rows this process commits.
pytestmark = pytest.mark.django_db(transaction=True)


def _post_all(server: PortalServer, key: str, uploads: list[tuple[int, list]]) -> list[requests.Response]:
    barrier = threading.Barrier(len(uploads))
    answers: list = [None] * len(uploads)

    def send(n: int, patient: int, files: list) -> None:
        barrier.wait(timeout=30)
        answers[n] = requests.post(
            f"{server.url}/api/uploads/", headers={"Authorization": f"Token {key}"},
            data={"patient": str(patient)}, files=[("files", (name, data, "application/dicom")) for name, data in files],
            timeout=300,
        )

    threads = [threading.Thread(target=send, args=(n, p, f)) for n, (p, f) in enumerate(uploads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(320)
    return answers


def _database_url() -> str:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return url.replace("@", f":{db['PASSWORD']}@", 1) if db.get("PASSWORD") else url


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, tmp_path):
    if request.param == "postgresql":
        if connection.vendor != "postgresql":
            skip_or_fail("needs PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal")
        portal = PortalServer(tmp_path, PORTS["postgresql"], _database_url())
    else:
        portal = PortalServer(tmp_path, PORTS["sqlite"], None)
        portal.manage("migrate", "--noinput")
    created = portal.manage("shell", "-c", SETUP_USERS)
    key, ids = printed(created, "KEY"), [int(i) for i in printed(created, "IDS").split(",")]
    try:
        yield portal.start(), key, ids
    finally:
        portal.stop()


def _assert_no_5xx(answers: list, server: PortalServer) -> None:
    for response in answers:
        assert response is not None, server.output()[-3000:]
        assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}\n{server.output()[-3000:]}"
        assert response.headers["Content-Type"] == "application/json"
        if response.status_code >= 400:
            assert response.json().get("error"), response.text
    assert [r.status_code for r in answers] == [201] * len(answers), [r.text[:200] for r in answers]


def test_four_simultaneous_uploads_for_one_patient(server):
    portal, key, ids = server
    mrn = "MRN-CONC-0"
    same = b.fresh_series(mrn)
    uploads = [(ids[0], same), (ids[0], same), (ids[0], b.fresh_series(mrn)), (ids[0], b.fresh_series(mrn))]
    answers = _post_all(portal, key, uploads)
    _assert_no_5xx(answers, portal)
    # The identical upload is stored once: 3 studies, 9 slices, each slice once.
    studies = {s["study_instance_uid"] for r in answers for s in r.json()["studies"]}
    assert len(studies) == 3
    assert sorted(r.json()["new_slices"] for r in answers) == [0, 3, 3, 3]


def test_four_simultaneous_uploads_for_four_patients(server):
    portal, key, ids = server
    uploads = [(pk, b.fresh_series(f"MRN-CONC-{n}")) for n, pk in enumerate(ids)]
    answers = _post_all(portal, key, uploads)
    _assert_no_5xx(answers, portal)
    assert [r.json()["new_slices"] for r in answers] == [3, 3, 3, 3]
