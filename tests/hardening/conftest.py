from tests.ingest.conftest import media, stored_files  # noqa: F401 - shared fixtures
