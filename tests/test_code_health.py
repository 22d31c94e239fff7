"""Structure rules of the brief that a test can hold: no import circle between app files,
counting imports inside functions and under TYPE_CHECKING (tools/code_health.py)."""
from __future__ import annotations

import textwrap
from pathlib import Path

from tools.code_health import circles, import_graph


def test_no_import_circle_between_app_files():
    assert circles(import_graph()) == []


def test_a_circle_through_a_function_level_import_is_found(tmp_path: Path):
    """The checker itself: a lazy import inside a function still closes a circle."""
    package = tmp_path / "portal"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from portal import b\n")
    (package / "b.py").write_text(textwrap.dedent("""
        def later():
            from portal.a import thing
            return thing
    """))
    (package / "c.py").write_text("from . import a\n")
    assert circles(import_graph(tmp_path)) == [["portal.a", "portal.b"]]


# The brief's direction of dependencies between apps (docs/architecture.md).
ALLOWED_APP_IMPORTS = {
    "portal": {"hospital", "scans", "accounts", "inference"},
    "hospital": {"scans", "accounts"},
    "scans": {"accounts"},
    "accounts": set(),
    "inference": set(),
}


def test_apps_depend_one_way():
    graph = import_graph()
    wrong = sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if target.split(".")[0] != module.split(".")[0]
        and target.split(".")[0] not in ALLOWED_APP_IMPORTS[module.split(".")[0]]
    )
    assert wrong == []
