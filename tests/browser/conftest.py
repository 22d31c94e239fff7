"""Browser tests share the fixtures in tests/browser/fixtures.py (registered globally)."""
from tests.browser.fixtures import log_in  # noqa: F401 - re-exported for the tests
