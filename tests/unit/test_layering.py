"""The layers of ``sandbox/`` point one way: outer layers import inner ones, never back.

Every module under ``sandbox/`` is parsed with ``ast``; every import counts,
at module level, inside functions and under ``TYPE_CHECKING`` alike.  A
package belongs to exactly one layer of ``LAYERS`` (outermost first).  A
module may import its own package, any package of its own layer and any
package of a layer further in; importing a package of a layer further out
fails unless the pair is listed in ``ALLOWED`` with the reason.  A new
package under ``sandbox/`` fails here until it is given a layer.

Also: only the CLI layer imports ``workers`` (``workers`` imports
``sandbox``, so anything deeper importing it would be a cycle), ``workers``
never imports the CLI layer, and gRPC/protobuf stay at ``api`` and above
(the orchestrator core, the pipeline and everything under it never speak
gRPC).  docs/architecture.md explains the table.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
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


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file."""
    _, package = _module_name(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
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
    names = {component(_module_name(p)[0]) for p in SANDBOX_FILES}
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
