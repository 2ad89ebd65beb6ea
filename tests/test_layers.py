"""The import rules of ARCHITECTURE.md §6, read from the sources: which package may import which,
and no module that imports a module importing it back (TYPE_CHECKING-only imports included: a
circle is a circle even when only the type checker walks it)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "codec", "sdk", "zones", "routing", "nameserver", "engines", "tools")
# what each package may import (besides itself)
ALLOWED = {
    "common": set(),
    "codec": {"common"},
    "zones": {"common", "codec"},
    "routing": {"common", "codec", "zones"},
    "nameserver": {"common", "codec", "zones", "routing"},
    "sdk": {"common", "codec"},
    "engines": {"common", "codec", "zones"},  # zones: TSIG key files
    "tools": {"common", "codec", "zones", "routing", "nameserver", "sdk", "engines"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every project module `path` imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def test_packages_import_only_downwards() -> None:
    wrong = sorted(f"{module} imports {target}" for module, targets in graph().items() for target in targets
                   if target.split(".")[0] != module.split(".")[0]
                   and target.split(".")[0] not in ALLOWED[module.split(".")[0]])
    assert wrong == []


def test_no_import_circles() -> None:
    edges = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert circles == []
