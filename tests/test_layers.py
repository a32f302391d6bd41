"""The import layering of `server/`, read from the source with `ast` (nothing is imported).

Rules (STYLE.md, "Where the house stands"): shared vocabulary lives in the bottom module
`server/vocabulary.py`; `collab` and `config` never import upward into the domain
packages; and there are no import cycles between files. Imports under `if TYPE_CHECKING:`
are not run, so they do not count; imports inside functions do count for the direct rules
but not for cycles (they run late, after every module has loaded).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "server"

DOMAIN = ("gateway", "notebooks", "comments", "history", "files", "shares", "collab")
DOMAIN += ("auth", "audit", "events", "web")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SERVER.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = _resolve(module, node)
    yield base
    # `from server.gateway import models` imports the module server.gateway.models.
    yield from (f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)


def _walk(body: list[ast.stmt], top_level_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    for stmt in body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            yield stmt
        elif isinstance(stmt, ast.If) and _is_type_checking(stmt.test):
            yield from _walk(stmt.orelse, top_level_only)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if not top_level_only:
                yield from _walk(stmt.body, top_level_only)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(stmt, field, None)
                if isinstance(inner, list):
                    stmts = [s for s in inner if isinstance(s, ast.stmt)]
                    stmts += [s for h in inner if isinstance(h, ast.excepthandler) for s in h.body]
                    yield from _walk(stmts, top_level_only)


def imports_of(module: str, *, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    found = set()
    for node in _walk(tree.body, top_level_only):
        found.update(t for t in _targets(module, node) if t == "server" or t.startswith("server."))
    return found


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{module} imports {target}"
        for module in MODULES
        if _under(module, prefix)
        for target in sorted(imports_of(module))
        if any(_under(target, f"server.{pkg}") for pkg in forbidden)
    ]


def test_the_parser_sees_imports() -> None:
    assert "server.vocabulary" in imports_of("server.collab.room")
    assert "server.vocabulary" in imports_of("server.config")


def test_collab_does_not_import_the_domain_packages_above_it() -> None:
    above = ("notebooks", "gateway", "comments", "history", "files", "shares")
    assert _violations("server.collab", above) == []


def test_config_imports_no_domain_package() -> None:
    assert _violations("server.config", DOMAIN) == []


def test_vocabulary_imports_nothing_from_server_but_errors() -> None:
    assert imports_of("server.vocabulary") <= {"server.errors"}


def _graph() -> dict[str, set[str]]:
    """Module-level imports between server files (a package stands for its __init__)."""
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = {t for t in imports_of(module, top_level_only=True) if t in MODULES}
        # Importing server.a.b runs server/a/__init__.py first.
        targets |= {p for t in targets for p in _parents(t) if p in MODULES}
        graph[module] = targets - {module}
    return graph


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_between_server_modules() -> None:
    graph = _graph()
    assert "server.vocabulary" in graph["server.collab.room"]  # the graph is not empty
    assert _cycles(graph) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_parses(module: str) -> None:
    imports_of(module)


# Services change rows; the layer that calls them (a route, the CLI, a background task)
# owns the transaction and commits once, so a change and its audit row land together.
SERVICES = [*sorted(SERVER.rglob("service.py")), SERVER / "gateway" / "tokens.py"]
# None still commits itself (a place to list one on its way to its callers):
COMMITTING_SERVICES: set[str] = set()


def _commits(path: Path) -> list[int]:
    tree = ast.parse(path.read_text())
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "commit"
    ]


def test_services_never_commit() -> None:
    assert _commits(ROOT / "server" / "notebooks" / "routes.py")  # the finder finds them
    offenders = {
        str(path.relative_to(ROOT)): lines
        for path in SERVICES
        if (lines := _commits(path)) and str(path.relative_to(ROOT)) not in COMMITTING_SERVICES
    }
    assert offenders == {}
