"""Code-health figures for the application code: import circles between app files (counting
imports inside functions and under TYPE_CHECKING), module sizes and function sizes.

    .venv/bin/python -m tools.code_health            # report; exit 1 when a circle exists

tests/test_code_health.py runs the same checks, so a new circle fails the suite.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
APP_PACKAGES = ("accounts", "scans", "hospital", "portal", "inference")
SKIPPED_PARTS = {"migrations", "__pycache__"}
MODULE_LINES_LIMIT = 400
FUNCTION_LINES_LIMIT = 60


def app_modules(root: Path = REPO_ROOT) -> dict[str, Path]:
    """Dotted module name → file, for every .py file of the apps (migrations left out)."""
    modules: dict[str, Path] = {}
    for package in APP_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if SKIPPED_PARTS.intersection(parts):
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The app module an import names (the longest known prefix), or None for a library."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The app modules `module` imports anywhere in its file (top level, functions, TYPE_CHECKING)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, path.name == "__init__.py", node)
            targets = [f"{source}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(t for t in (_resolve(name, known) for name in targets) if t and t != module)
    return found


def import_graph(root: Path = REPO_ROOT) -> dict[str, set[str]]:
    known = app_modules(root)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


@dataclass(frozen=True)
class Size:
    where: str
    lines: int


def module_sizes(root: Path = REPO_ROOT) -> list[Size]:
    sizes = [Size(str(p.relative_to(root)), len(p.read_text().splitlines())) for p in app_modules(root).values()]
    return sorted(sizes, key=lambda s: -s.lines)


def function_sizes(root: Path = REPO_ROOT) -> list[Size]:
    sizes = []
    for path in app_modules(root).values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                sizes.append(Size(f"{path.relative_to(root)}:{node.lineno} {node.name}", node.end_lineno - start + 1))
    return sorted(sizes, key=lambda s: -s.lines)


def main() -> int:
    found = circles(import_graph())
    modules, functions = module_sizes(), function_sizes()
    print(f"import circles between app files: {len(found)}")
    for group in found:
        print("  circle:", " <-> ".join(group))
    print(f"modules: {len(modules)}, largest {modules[0].lines} lines ({modules[0].where})")
    for size in modules:
        if size.lines > MODULE_LINES_LIMIT:
            print(f"  over {MODULE_LINES_LIMIT}: {size.where} {size.lines}")
    print(f"functions: {len(functions)}, largest {functions[0].lines} lines ({functions[0].where})")
    for size in functions:
        if size.lines > FUNCTION_LINES_LIMIT:
            print(f"  over {FUNCTION_LINES_LIMIT}: {size.where} {size.lines}")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
