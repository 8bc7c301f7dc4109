"""The layers of ``sandbox/`` point one way: outer layers import inner ones, never back.

Every module under ``sandbox/`` is parsed with ``ast``; every import counts,
at module level, inside functions and under ``TYPE_CHECKING`` alike.  A
package belongs to exactly one layer of ``LAYERS`` (outermost first).  A
module may import its own package, any package of its own layer and any
package of a layer further in; importing a package of a layer further out
fails unless the pair is listed in ``ALLOWED`` with the reason.  A new
package under ``sandbox/`` fails here until it is given a layer.

No import cycles, between modules or between packages: the module graph
(every import counted as above) and the package graph must both be acyclic,
so packages of one layer import each other in one direction only.  No module
imports a private name (``_x``) of another module; ``PRIVATE_ALLOWED`` lists
the exceptions with their reason, and an entry no longer needed fails.

Also: only the CLI layer imports ``workers`` (``workers`` imports
``sandbox``, so anything deeper importing it would be a cycle), ``workers``
never imports the CLI layer, and gRPC/protobuf stay at ``api`` and above
(the orchestrator core, the pipeline and everything under it never speak
gRPC).  docs/architecture.md explains the table.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "sandbox"

# Outermost first.  Names are packages (or top-level modules) of ``sandbox``;
# "api.gen" is the generated protobuf code, "sandbox" the package's own
# ``__init__`` (``__version__``).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli", "pytest_plugin"),                         # entry points: the command line, the pytest plugin
    ("campaign",),                                    # a client of the farm: many analyses, compared
    ("api",),                                         # gRPC servicers, server, clients
    ("orchestrator",),                                # queue, leases, store: no gRPC
    ("core",),                                        # one analysis: the pipeline and its sessions
    ("detect", "clock", "canary"),                    # what an analysis plants, fast-forwards, finds
    ("containers", "device", "network", "images"),    # adapters: Docker, adb, fakenet/capture, image builds
    ("bundle", "monitor", "report"),                  # formats: firmware bundles, strace logs, the report
    ("settings", "errors", "model", "api.gen", "sandbox"),  # foundations; model: the analysis types every layer shares
)

# (importing package, imported package) pairs that break the table on purpose,
# each with the reason.  Empty today; an entry no longer needed fails the test.
ALLOWED: dict[tuple[str, str], str] = {}

# (importing file, imported module, private name) -> reason.  The integrator
# removes an entry once its fix is merged; an entry no longer needed fails.
PRIVATE_ALLOWED: dict[tuple[str, str, str], str] = {}

WORKERS_IMPORTED_ONLY_BY = frozenset({"cli"})  # the embedded farm and `serve --local-worker` run a WorkerAgent
WORKERS_NEVER_IMPORT = frozenset({"cli", "pytest_plugin"})
GRPC_FROM_LAYER = 2  # index of the innermost layer that may import gRPC ("api"); "api.gen" too

LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def _modules(top: Path) -> list[Path]:
    return sorted(p for p in top.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> tuple[str, str]:
    """(dotted module name, dotted package the module's relative imports start from)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def _is_module(dotted: str) -> bool:
    p = ROOT.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _from_module(node: ast.ImportFrom, package: str) -> str:
    """The absolute module a ``from ... import`` reads, relative levels resolved."""
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file."""
    _, package = _module_name(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = _from_module(node, package)
            for alias in node.names:  # `from . import x` may name a submodule
                sub = f"{module}.{alias.name}"
                yield node.lineno, sub if _is_module(sub) else module


def component(module: str) -> str | None:
    """The layer table's name for a ``sandbox`` module; None outside ``sandbox``."""
    parts = module.split(".")
    if parts[0] != "sandbox":
        return None
    if len(parts) == 1:
        return "sandbox"
    if parts[1] == "api" and len(parts) > 2 and parts[2] == "gen":
        return "api.gen"
    return parts[1]


SANDBOX_FILES = _modules(SANDBOX)
IDS = [str(p.relative_to(ROOT)) for p in SANDBOX_FILES]


def _module_graph() -> dict[str, dict[str, list[str]]]:
    """module -> {imported sandbox module -> ["file:line", ...]}.

    An import of a name from a package (``from sandbox.device import Device``)
    is an edge to the package's ``__init__``, which is what Python runs.
    """
    graph: dict[str, dict[str, list[str]]] = {}
    for path in SANDBOX_FILES:
        name = _module_name(path)[0]
        edges = graph.setdefault(name, {})
        for line, module in imports(path):
            if component(module) is not None and module != name:
                edges.setdefault(module, []).append(f"{path.relative_to(ROOT)}:{line}")
    return graph


def _package_graph() -> dict[str, dict[str, list[str]]]:
    """The layer table's names as nodes; an edge per import between two of them."""
    graph: dict[str, dict[str, list[str]]] = {}
    for src, edges in _module_graph().items():
        a = component(src)
        assert a is not None
        for dst, where in edges.items():
            b = component(dst)
            if b is not None and b != a:
                graph.setdefault(a, {}).setdefault(b, []).extend(f"{w} imports {dst}" for w in where)
    return graph


def cycles(graph: Mapping[str, Mapping[str, object]]) -> list[list[str]]:
    """One cycle (as a closed path) per strongly connected component of more than one node.

    Tarjan's algorithm, iterative so a deep graph cannot hit the recursion
    limit; one representative cycle per component is enough to say what to fix.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp: list[str] = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    if len(comp) > 1:
                        components.append(comp)
    return [_cycle_in(graph, set(comp)) for comp in components]


def _cycle_in(graph: Mapping[str, Mapping[str, object]], members: set[str]) -> list[str]:
    """A closed path through a strongly connected component (breadth-first, shortest back to its start)."""
    start = min(members)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph.get(node, {})):
                if child not in members:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in came_from:
                    came_from[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"not a cycle: {sorted(members)}")  # pragma: no cover


def _describe(cycle: list[str], graph: Mapping[str, Mapping[str, list[str]]]) -> str:
    steps = [f"  {a} -> {b}: {', '.join(dict.fromkeys(graph[a][b]))}" for a, b in zip(cycle, cycle[1:])]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


CYCLE_FIX = ("fix: decide which side is lower-level; move the code the lower side needs down into it, "
             "or pass it in (an argument, a callable, a hook) instead of importing it; an import inside "
             "a function or under TYPE_CHECKING still counts")


def private_imports() -> Iterator[tuple[str, int, str, str]]:
    """(file, line, module, name) of every ``from module import _name`` of another module.

    Dunders (``__version__``) are public.  A private name imported from a
    package (``from .pkg import _helper``) counts too; a private *submodule*
    (``from . import _impl``) counted from inside its own package does not.
    """
    for path in SANDBOX_FILES:
        name, package = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = _from_module(node, package)
            for alias in node.names:
                private = alias.name.startswith("_") and not (alias.name.startswith("__") and alias.name.endswith("__"))
                if not private or module == name:
                    continue
                if _is_module(f"{module}.{alias.name}") and name.startswith(module + "."):
                    continue
                yield str(path.relative_to(ROOT)), node.lineno, module, alias.name


def _violations() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for path in SANDBOX_FILES:
        src = component(_module_name(path)[0])
        assert src is not None
        for line, module in imports(path):
            dst = component(module)
            if dst is None or dst == src:
                continue
            if LAYER_OF[dst] < LAYER_OF[src]:
                found.setdefault((src, dst), []).append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


def test_every_package_has_a_layer() -> None:
    names = {component(_module_name(p)[0]) or "" for p in SANDBOX_FILES}
    missing = sorted(n for n in names if n not in LAYER_OF)
    assert not missing, f"give these a layer in LAYERS: {missing}"
    assert len(LAYER_OF) == sum(len(layer) for layer in LAYERS), "a name is in two layers"


def test_no_inner_layer_imports_an_outer_one() -> None:
    found = _violations()
    unexplained = {pair: where for pair, where in found.items() if pair not in ALLOWED}
    assert not unexplained, "inner layer imports outer layer:\n" + "\n".join(
        w for where in unexplained.values() for w in where)
    stale = sorted(pair for pair in ALLOWED if pair not in found)
    assert not stale, f"ALLOWED entries no longer needed, remove them: {stale}"


def test_no_import_cycle_between_modules() -> None:
    graph = _module_graph()
    found = cycles(graph)
    assert not found, "import cycles between modules of sandbox/:\n" + "\n".join(
        _describe(c, graph) for c in found) + "\n" + CYCLE_FIX


def test_no_import_cycle_between_packages() -> None:
    """Packages of one layer import each other in one direction only (device -> network -> containers)."""
    graph = _package_graph()
    found = cycles(graph)
    assert not found, "import cycles between packages of sandbox/:\n" + "\n".join(
        _describe(c, graph) for c in found) + "\n" + CYCLE_FIX


def test_no_module_imports_a_private_name_of_another() -> None:
    found = {(f, m, n): line for f, line, m, n in private_imports()}
    bad = [f"{f}:{line} imports the private name {n} from {m}; fix: make it public in {m} (drop the "
           f"underscore, document it) if it is part of what {m} offers, or move it to a module both import"
           for (f, m, n), line in sorted(found.items()) if (f, m, n) not in PRIVATE_ALLOWED]
    assert not bad, "\n".join(bad)
    stale = sorted(key for key in PRIVATE_ALLOWED if key not in found)
    assert not stale, f"PRIVATE_ALLOWED entries no longer needed, remove them: {stale}"


def test_the_cycle_finder_finds_cycles() -> None:
    graph: dict[str, dict[str, list[str]]] = {"a": {"b": ["a.py:1"]}, "b": {"c": ["b.py:3"]}, "c": {"a": ["c.py:9"], "d": []}, "d": {}, "e": {"e2": []},
             "e2": {"e": []}}
    found = sorted(cycles(graph))
    assert found == [["a", "b", "c", "a"], ["e", "e2", "e"]]
    assert "a -> b: a.py:1" in _describe(found[0], graph)
    assert cycles({"x": {"y": []}, "y": {}}) == []


@pytest.mark.parametrize("path", SANDBOX_FILES, ids=IDS)
def test_only_the_cli_imports_workers(path: Path) -> None:
    src = component(_module_name(path)[0])
    if src in WORKERS_IMPORTED_ONLY_BY:
        return
    bad = [f"line {line}: {m}" for line, m in imports(path) if m == "workers" or m.startswith("workers.")]
    assert not bad, f"{src} is below the CLI and imports workers: {bad}"


@pytest.mark.parametrize("path", SANDBOX_FILES, ids=IDS)
def test_grpc_stays_at_the_api_and_above(path: Path) -> None:
    src = component(_module_name(path)[0])
    assert src is not None
    if src == "api.gen" or LAYER_OF[src] <= GRPC_FROM_LAYER:
        return
    bad = [f"line {line}: {m}" for line, m in imports(path) if m.split(".")[0] == "grpc" or m.startswith("google.protobuf")]
    assert not bad, f"{src} is below the API and imports gRPC/protobuf: {bad}"


@pytest.mark.parametrize("path", _modules(ROOT / "workers"), ids=lambda p: str(p.relative_to(ROOT)))
def test_workers_do_not_import_the_cli(path: Path) -> None:
    bad = [f"line {line}: {m}" for line, m in imports(path) if component(m) in WORKERS_NEVER_IMPORT]
    assert not bad, f"workers import the CLI layer: {bad}"


def test_the_checker_sees_imports_inside_functions() -> None:
    """Nested, relative and TYPE_CHECKING imports count (checked on known cases)."""
    found = {m for _, m in imports(SANDBOX / "cli" / "campaign.py")}
    assert "sandbox.cli.farm" in found  # `from .farm import ...` inside _farm()
    assert "sandbox.campaign.runner" in found  # `from ..campaign.runner import ...` inside cmd_campaign
    assert "workers.agent" in {m for _, m in imports(SANDBOX / "cli" / "fleet.py")}  # under TYPE_CHECKING
    assert "sandbox" in {m for _, m in imports(SANDBOX / "settings.py")}  # `from . import __version__`
