"""The shape of the house: no import cycles, a small top level, no destination in the core.

The layer rules themselves are import-linter contracts (`.importlinter`, run by
`make lint`); these tests hold what those contracts cannot say.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping, Set
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "service"
PACKAGES = ("service", "segport_constant_contact", "segport_mailchimp", "segport_toy_destination")
PLUGIN_SOURCES = (
    ROOT / "plugins" / "constant_contact" / "segport_constant_contact",
    ROOT / "plugins" / "mailchimp" / "segport_mailchimp",
    ROOT / "tests" / "plugins" / "toy_destination" / "segport_toy_destination",
)


def import_graph() -> Mapping[str, Set[str]]:
    """Every module of ours and the modules of ours it imports, counting every import
    (module level, function-local and ``if TYPE_CHECKING:`` alike)."""
    graph = grimp.build_graph(
        *PACKAGES, include_external_packages=False, exclude_type_checking_imports=False
    )
    return {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}


def strongly_connected(graph: Mapping[str, Set[str]]) -> Iterator[list[str]]:
    """Tarjan's algorithm (iterative): each component of more than one module is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        yield sorted(component)
                continue
            if child not in graph:
                continue
            if child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])


def test_cycle_finder_finds_a_cycle_and_nothing_else() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert list(strongly_connected(graph)) == [["a", "b", "c"]]


def test_no_module_imports_itself_back_through_others() -> None:
    cycles = list(strongly_connected(import_graph()))
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_top_of_service_holds_only_entry_points_and_shared_modules() -> None:
    files = sorted(p.name for p in SERVICE.iterdir() if p.is_file())
    assert len(files) <= 8, files
    assert set(files) <= {
        "__init__.py",
        "py.typed",
        "app.py",
        "cli.py",
        "core.py",
        "demo.py",
        "settings.py",
        "worker.py",
    }, files


def _python_files(*roots: Path) -> Iterator[Path]:
    for root in roots:
        yield from (p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_of_the_core_names_a_destination() -> None:
    # Destination keys and package names; prose that explains a limit by its origin
    # ("Constant Contact limits requests per application") is not a dependency.
    named = re.compile(r"constant_contact|mailchimp|toy_destination|toy_webhook", re.IGNORECASE)
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _python_files(SERVICE)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if named.search(line)
    ]
    assert offenders == []


ENVIRON_MUTATORS = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__"}


def _environ_changes(tree: ast.AST) -> Iterator[int]:
    def is_environ(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ"

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ENVIRON_MUTATORS and is_environ(node.func.value):
                yield node.lineno
            if node.func.attr in {"putenv", "unsetenv"}:
                yield node.lineno
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if isinstance(target, ast.Subscript) and is_environ(target.value):
                yield target.lineno


def test_environ_change_detector_sees_each_way_of_changing_it() -> None:
    source = (
        "import os\n"
        "os.environ['A'] = '1'\n"
        "os.environ.update(B='2')\n"
        "del os.environ['A']\n"
        "os.putenv('C', '3')\n"
        "x = os.environ.get('D')\n"
    )
    assert sorted(_environ_changes(ast.parse(source))) == [2, 3, 4, 5]


def test_no_code_changes_the_process_environment() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _python_files(SERVICE, *PLUGIN_SOURCES)
        for line in _environ_changes(ast.parse(path.read_text()))
    ]
    assert offenders == []


def test_plugins_import_only_the_public_plugin_api() -> None:
    public = {"service.plugins", "service.plugins.testing", "service.plugins.conformance"}
    # The plugin's own tests too: they use the public testing kit, like an outside plugin's.
    plugin_tests = [ROOT / "plugins" / name / "tests" for name in ("constant_contact", "mailchimp")]
    offenders = []
    for path in _python_files(*PLUGIN_SOURCES, *plugin_tests):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if (name == "service" or name.startswith("service.")) and name not in public:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert offenders == []


LAZY_IMPORTS_ALLOWED = {
    # `segport token` and `--help` stay quick: each command imports only what it runs.
    "service/cli.py",
    # Only the configured adapter is imported (embedded mode never loads the MongoDB driver).
    "service/store/__init__.py",
}


def test_our_modules_are_imported_at_the_top_of_a_module() -> None:
    """A function-local or TYPE_CHECKING import of our own code usually hides a cycle."""
    ours = tuple(f"{package}." for package in PACKAGES) + PACKAGES
    offenders = []
    for path in _python_files(SERVICE, *PLUGIN_SOURCES):
        relative = str(path.relative_to(ROOT))
        if relative in LAZY_IMPORTS_ALLOWED:
            continue
        tree = ast.parse(path.read_text())
        top_level = {
            id(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in top_level:
                continue
            if isinstance(node, ast.ImportFrom):
                names, relative_import = [node.module or ""], node.level > 0
            else:
                names, relative_import = [alias.name for alias in node.names], False
            if relative_import or any(name.startswith(ours) for name in names):
                offenders.append(f"{relative}:{node.lineno}")
    assert offenders == []
