"""The layer rules of ``docs/architecture.md``, held by walking the package's import statements.

Every ``.py`` under ``jwtguard/`` is parsed (nothing imported), and every import statement counts: at module
level, inside functions, and under ``if TYPE_CHECKING:``. A circle that only type checkers or a deferred
import see still ties two modules together, and is the first step to one that breaks at import time.

Each rule runs on the real package and, so that it can be seen to fail, on a small synthetic package.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

import jwtguard
import jwtguard.tokens
import jwtguard.validation

PACKAGE = "jwtguard"
ROOT = Path(jwtguard.__file__).resolve().parent
# The page beside the tests (the repository), the package where it is imported from (the wheel, when installed).
ARCHITECTURE_PAGE = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"

#: The ways in from a framework; ``contrib/*`` are edges too. ``jwtguard.edge`` is what they share, not an edge.
EDGES = frozenset({"authentication", "middleware", "decorators", "permissions"})
#: The app's own wiring: the one module that may import edges (to register optional integrations).
WIRING = "apps"


@dataclass(frozen=True)
class Import:
    """One import statement's target inside the package."""

    importer: str
    imported: str
    line: int
    #: Inside a function or under ``if TYPE_CHECKING:``: does not run when the importer is imported.
    deferred: bool

    def __str__(self) -> str:
        when = " (deferred)" if self.deferred else ""
        return f"{self.importer}:{self.line} imports {self.imported}{when}"


def module_name(relative: str, package: str = PACKAGE) -> str:
    """``contrib/spectacular.py`` -> ``jwtguard.contrib.spectacular``; ``testing/__init__.py`` -> its package."""
    parts = [package, *relative.removesuffix(".py").split("/")]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package_init(relative: str) -> bool:
    return relative.rsplit("/", 1)[-1] == "__init__.py"


def package_files(root: Path = ROOT) -> dict[str, str]:
    """``{path relative to the package: source}`` for every ``.py`` of the package."""
    return {path.relative_to(root).as_posix(): path.read_text() for path in sorted(root.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _ImportFinder(ast.NodeVisitor):
    """Every import statement of one module: ``(the dotted names it imports, line, deferred)``."""

    def __init__(self, module: str, is_package: bool) -> None:
        self.module = module
        self.is_package = is_package
        self.found: list[tuple[list[str], int, bool]] = []
        self._deferred = 0

    def _visit_deferred(self, nodes: Iterable[ast.AST]) -> None:
        self._deferred += 1
        for node in nodes:
            self.visit(node)
        self._deferred -= 1

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_deferred([*node.decorator_list, *node.body])

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_deferred([*node.decorator_list, *node.body])

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self._visit_deferred(node.body)
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.append(([alias.name for alias in node.names], node.lineno, self._deferred > 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            # The importer's package, then one package up per extra dot.
            anchor = self.module.split(".") if self.is_package else self.module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        # `from a import b` runs module a.b when there is one, else module a (or the nearest package above).
        self.found.append(([f"{base}.{alias.name}" for alias in node.names], node.lineno, self._deferred > 0))


def _resolve(candidate: str, modules: set[str]) -> str | None:
    """The package's module that importing ``candidate`` runs last: itself, or its longest known prefix."""
    parts = candidate.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in modules:
            return name
    return None


def collect_imports(files: Mapping[str, str], package: str = PACKAGE) -> list[Import]:
    """Every import, by a module of ``files``, of a module of the package.

    ``from jwtguard import signals`` imports ``jwtguard.signals``; ``from jwtguard import __version__`` and
    ``from jwtguard.conf import get_settings`` import ``jwtguard`` and ``jwtguard.conf``.
    """
    modules = {module_name(relative, package) for relative in files}
    found: list[Import] = []
    for relative, source in files.items():
        importer = module_name(relative, package)
        finder = _ImportFinder(importer, is_package_init(relative))
        finder.visit(ast.parse(source, filename=relative))
        for candidates, line, deferred in finder.found:
            targets = {_resolve(candidate, modules) for candidate in candidates}
            found.extend(Import(importer, imported, line, deferred) for imported in sorted(filter(None, targets)))
    return found


def _is_edge(module: str, package: str = PACKAGE) -> bool:
    local = module.removeprefix(package + ".")
    return local in EDGES or local == "contrib" or local.startswith("contrib.")


# The rules: each returns what breaks it, empty when it holds.


def imports_of_the_middleware(imports: Iterable[Import], package: str = PACKAGE) -> list[Import]:
    """Only the app's wiring may import ``middleware`` (and need not): other modules use ``jwtguard.edge``."""
    middleware, wiring = f"{package}.middleware", f"{package}.{WIRING}"
    return [i for i in imports if i.imported == middleware and i.importer not in (middleware, wiring)]


def edges_importing_edges(imports: Iterable[Import], package: str = PACKAGE) -> list[Import]:
    """An edge imports ``jwtguard.edge`` and the layers below, never another edge."""
    return [
        i
        for i in imports
        if i.importer != i.imported and _is_edge(i.importer, package) and _is_edge(i.imported, package)
    ]


def edges_imported_from_below(imports: Iterable[Import], package: str = PACKAGE) -> list[Import]:
    """Nothing under the edges (the validator, ``jwtguard.edge``, operations) imports an edge; the wiring may."""
    wiring = f"{package}.{WIRING}"
    return [
        i
        for i in imports
        if _is_edge(i.imported, package) and not _is_edge(i.importer, package) and i.importer != wiring
    ]


def eager_imports_in_package_inits(files: Mapping[str, str], package: str = PACKAGE) -> list[Import]:
    """A package's ``__init__`` imports its own submodules only when used (or for type checkers).

    Python runs a package's ``__init__`` before any of its submodules; when that ``__init__`` imports none of
    them as it runs, it has finished before any of them starts, and a submodule may read a name from it
    (``fetch`` reads ``jwtguard.__version__``) without taking part in any circle.
    """
    inits = {module_name(relative, package) for relative in files if is_package_init(relative)}
    return [
        i
        for i in collect_imports(files, package)
        if i.importer in inits and not i.deferred and i.imported.startswith(i.importer + ".")
    ]


def import_circles(files: Mapping[str, str], package: str = PACKAGE) -> list[list[str]]:
    """One circle per tangle of modules that import each other, as ``[a, b, ..., a]``.

    An import of a package's ``__init__`` from inside that package is no link of a circle when the
    ``__init__`` imports its submodules lazily (``eager_imports_in_package_inits`` holds that).
    """
    eager_inits = {i.importer for i in eager_imports_in_package_inits(files, package)}
    graph: dict[str, set[str]] = {module_name(relative, package): set() for relative in files}
    for i in collect_imports(files, package):
        into_own_init = i.importer.startswith(i.imported + ".") and i.imported not in eager_inits
        if not into_own_init:
            graph[i.importer].add(i.imported)
    return [_circle_through(tangle, graph) for tangle in _tangles(graph)]


def _tangles(graph: Mapping[str, set[str]]) -> Iterator[set[str]]:
    """Strongly connected components with a circle in them (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                tangle = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    tangle.add(member)
                    if member == node:
                        break
                if len(tangle) > 1 or node in graph[node]:
                    yield tangle


def _circle_through(tangle: set[str], graph: Mapping[str, set[str]]) -> list[str]:
    """The shortest path from the tangle's first module back to itself (breadth first)."""
    start = min(tangle)
    paths = {successor: [start, successor] for successor in sorted(graph[start] & tangle)}
    queue = list(paths)
    while start not in paths:
        node = queue.pop(0)
        for successor in sorted(graph[node] & tangle):
            if successor not in paths:
                paths[successor] = [*paths[node], successor]
                queue.append(successor)
    return paths[start]


def runtime_imports_of(module: str, imports: Iterable[Import]) -> list[Import]:
    return [i for i in imports if i.importer == module and not i.deferred]


# The rules on the real package.

FILES = package_files()
IMPORTS = collect_imports(FILES)


def _lines(found: Iterable[object]) -> str:
    return "\n".join(str(item) for item in found)


def test_the_walk_sees_the_package_whole() -> None:
    modules = {module_name(relative) for relative in FILES}
    assert {"jwtguard", "jwtguard.edge", "jwtguard.tokens", "jwtguard.contrib.spectacular"} <= modules
    eager = {(i.importer, i.imported) for i in IMPORTS if not i.deferred}
    assert ("jwtguard.middleware", "jwtguard.edge") in eager
    assert ("jwtguard.jwks", "jwtguard.signals") in eager  # from jwtguard import signals
    deferred = {(i.importer, i.imported) for i in IMPORTS if i.deferred}
    assert ("jwtguard", "jwtguard.validation") in deferred  # inside validate_token, and for type checkers
    assert ("jwtguard.tokens", "jwtguard.conf") in deferred  # under TYPE_CHECKING
    assert ("jwtguard.apps", "jwtguard.contrib.spectacular") in deferred  # inside a function


def test_no_module_imports_the_middleware() -> None:
    assert not imports_of_the_middleware(IMPORTS), _lines(imports_of_the_middleware(IMPORTS))


def test_no_edge_imports_another_edge() -> None:
    assert not edges_importing_edges(IMPORTS), _lines(edges_importing_edges(IMPORTS))


def test_every_edge_imports_the_edge_module() -> None:
    edges = {module_name(relative) for relative in FILES if _is_edge(module_name(relative))} - {"jwtguard.contrib"}
    sharing = {i.importer for i in IMPORTS if i.imported == "jwtguard.edge"}
    assert edges - sharing == set()


def test_nothing_below_the_edges_imports_one() -> None:
    assert not edges_imported_from_below(IMPORTS), _lines(edges_imported_from_below(IMPORTS))


def test_package_inits_import_their_submodules_lazily() -> None:
    assert not eager_imports_in_package_inits(FILES), _lines(eager_imports_in_package_inits(FILES))


def test_no_import_circle() -> None:
    circles = import_circles(FILES)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(circle) for circle in circles)


def test_tokens_is_a_leaf() -> None:
    """``AccessToken`` imports nothing of the package as it runs: anything may name it, nothing ties back."""
    assert not runtime_imports_of("jwtguard.tokens", IMPORTS), _lines(runtime_imports_of("jwtguard.tokens", IMPORTS))
    assert jwtguard.validation.AccessToken is jwtguard.tokens.AccessToken  # users import it from validation


# Each rule fails on a synthetic package that breaks it.


def test_the_middleware_rule_catches_an_import_of_it() -> None:
    files = {
        "__init__.py": "",
        "middleware.py": "",
        "apps.py": "def ready():\n    import jwtguard.middleware\n",
        "views.py": "from jwtguard.middleware import helper\n",
        "checks.py": "from jwtguard import middleware\n",
    }
    found = imports_of_the_middleware(collect_imports(files))
    assert [(i.importer, i.line) for i in found] == [("jwtguard.views", 1), ("jwtguard.checks", 1)]


def test_the_edge_rule_catches_an_edge_importing_another() -> None:
    files = {
        "__init__.py": "",
        "edge.py": "",
        "middleware.py": "from jwtguard.edge import x\n",
        "decorators.py": "from jwtguard.edge import x\nfrom .middleware import helper\n",
        "authentication.py": "import typing\nif typing.TYPE_CHECKING:\n    from jwtguard import permissions\n",
        "permissions.py": "",
        "contrib/__init__.py": "",
        "contrib/ninja.py": "def auth():\n    from jwtguard.authentication import Auth\n",
    }
    found = {(i.importer, i.imported) for i in edges_importing_edges(collect_imports(files))}
    assert found == {
        ("jwtguard.decorators", "jwtguard.middleware"),
        ("jwtguard.authentication", "jwtguard.permissions"),
        ("jwtguard.contrib.ninja", "jwtguard.authentication"),
    }


def test_the_layer_rule_catches_an_edge_imported_from_below() -> None:
    files = {
        "__init__.py": "",
        "edge.py": "from jwtguard.decorators import jwt_required\n",
        "decorators.py": "",
        "apps.py": "def ready():\n    import jwtguard.contrib.spectacular\n",
        "contrib/__init__.py": "",
        "contrib/spectacular.py": "",
    }
    found = edges_imported_from_below(collect_imports(files))
    assert [(i.importer, i.imported) for i in found] == [("jwtguard.edge", "jwtguard.decorators")]


def test_the_circle_rule_reports_each_circle() -> None:
    files = {
        "__init__.py": "",
        "a.py": "from jwtguard import b\n",
        "b.py": "def later():\n    from jwtguard.c import x\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\n",
        "d.py": "import jwtguard.d\n",
        "e.py": "from jwtguard.a import A\n",
    }
    assert import_circles(files) == [
        ["jwtguard.a", "jwtguard.b", "jwtguard.c", "jwtguard.a"],
        ["jwtguard.d", "jwtguard.d"],
    ]


def test_a_lazy_package_init_is_no_link_of_a_circle_and_an_eager_one_is() -> None:
    lazy = {
        "__init__.py": "__version__ = '1'\ndef validate():\n    from jwtguard.validation import v\n",
        "validation.py": "from jwtguard.fetch import get\n",
        "fetch.py": "from jwtguard import __version__\n",
    }
    assert import_circles(lazy) == []
    assert eager_imports_in_package_inits(lazy) == []
    eager = {**lazy, "__init__.py": "from jwtguard.validation import v\n__version__ = '1'\n"}
    assert import_circles(eager) == [["jwtguard", "jwtguard.validation", "jwtguard.fetch", "jwtguard"]]
    assert [str(i) for i in eager_imports_in_package_inits(eager)] == ["jwtguard:1 imports jwtguard.validation"]


def test_the_leaf_rule_sees_run_time_imports_only() -> None:
    files = {
        "__init__.py": "",
        "conf.py": "",
        "tokens.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from jwtguard.conf import C\n",
    }
    assert runtime_imports_of("jwtguard.tokens", collect_imports(files)) == []
    files["tokens.py"] = "import jwtguard.conf\n"
    assert [str(i) for i in runtime_imports_of("jwtguard.tokens", collect_imports(files))] == [
        "jwtguard.tokens:1 imports jwtguard.conf"
    ]


def test_imports_resolve_to_the_modules_they_run() -> None:
    files = {
        "__init__.py": "__version__ = '1'\n",
        "signals.py": "",
        "testing/__init__.py": "from . import issuer\nfrom .. import signals\n",
        "testing/issuer.py": "from jwtguard import signals, __version__\nimport jwtguard.testing.missing\n",
    }
    found = {(i.importer, i.imported) for i in collect_imports(files)}
    assert found == {
        ("jwtguard.testing", "jwtguard.testing.issuer"),
        ("jwtguard.testing", "jwtguard.signals"),
        ("jwtguard.testing.issuer", "jwtguard.signals"),
        ("jwtguard.testing.issuer", "jwtguard"),
        ("jwtguard.testing.issuer", "jwtguard.testing"),
    }


# The architecture page names every module.


def documented_modules(page: str) -> set[str]:
    """The modules the page's module map names: the first column of its table, ``` `contrib/spectacular.py` ```."""
    section = re.split(r"^## ", page.split("\n## Module map", 1)[1], maxsplit=1, flags=re.MULTILINE)[0]
    return {
        name
        for row in re.findall(r"^\|([^|\n]+)\|", section, flags=re.MULTILINE)
        for name in re.findall(r"`([\w/]+\.py)`", row)
    }


def undocumented_modules(files: Iterable[str], page: str) -> list[str]:
    """Every module of the package but a subpackage's ``__init__.py`` has its line in the module map."""
    named = documented_modules(page)
    subpackage_inits = {relative for relative in files if is_package_init(relative) and relative != "__init__.py"}
    return [relative for relative in files if relative not in named and relative not in subpackage_inits]


def test_every_module_is_on_the_architecture_page() -> None:
    missing = undocumented_modules(FILES, ARCHITECTURE_PAGE.read_text())
    assert not missing, f"docs/architecture.md: add a line to the module map for {missing}"


def test_every_module_on_the_architecture_page_exists() -> None:
    stale = documented_modules(ARCHITECTURE_PAGE.read_text()) - set(FILES)
    assert not stale, f"docs/architecture.md names modules that are gone: {sorted(stale)}"


def test_the_page_rule_catches_a_module_left_out() -> None:
    page = (
        "# A\n\n## Module map\n\n| module | holds |\n| --- | --- |\n| `edge.py` | `tokens.py` |\n\n## Why\n\n`a.py`\n"
    )
    files = ["__init__.py", "edge.py", "tokens.py", "a.py", "contrib/__init__.py", "contrib/ninja.py"]
    assert documented_modules(page) == {"edge.py"}
    assert undocumented_modules(files, page) == ["__init__.py", "tokens.py", "a.py", "contrib/ninja.py"]


@pytest.mark.parametrize("relative", sorted(FILES))
def test_module_names_follow_the_path(relative: str) -> None:
    name = module_name(relative)
    assert name == PACKAGE or name.startswith(PACKAGE + ".")
    assert ".__init__" not in name
