"""The layers of docs/architecture.md, checked on the source: a package imports only packages of lower
layers, no module imports itself back through others, and no module is longer than MAX_LINES."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top: a package may import every package of a lower layer, none of its own layer or above.
# Keep in step with the table in docs/architecture.md (test_architecture_page_lists_the_layers).
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("extras", "tasks", "rundir"),
    ("config",),
    ("data", "slurm"),
    ("model",),
    ("train", "generate", "evaluate", "submission"),
    ("collect", "runplan"),
    ("report",),
    ("elements",),
    ("controller",),
    ("dashboard",),
    ("cli",),
    ("demo", "__main__"),
]
LAYER_OF = {package: rank for rank, names in enumerate(LAYERS) for package in names}
MAX_LINES = 400
# module -> why it may be longer (docs/architecture.md says the same)
LONGER_ALLOWED = {"mft_hpc.rundir.state": "the one class that owns the SQLite state store"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.glob("mft_hpc/**/*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


MODULES = _modules()


def package_of(module: str) -> str:
    """The architecture's unit: the sub-package (or top module) of mft_hpc."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "mft_hpc"


def imports_of(path: Path) -> set[str]:
    """Project modules ``path`` imports, anywhere in the file (a function-level import is a dependency too),
    with the packages whose ``__init__`` an import runs."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                     for alias in node.names]
        for name in names:
            parts = name.split(".")
            targets.update(".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) in MODULES)
            if name in MODULES:
                targets.add(name)
    return targets


GRAPH = {module: imports_of(path) - {module} for module, path in MODULES.items()}


def test_every_package_has_a_layer():
    packages = {package_of(module) for module in MODULES} - {"mft_hpc"}
    assert sorted(packages - set(LAYER_OF)) == []


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in graph.items():
        source = package_of(module)
        for target in sorted(targets):
            other = package_of(target)
            if other in (source, "mft_hpc") or source == "mft_hpc":
                continue
            if LAYER_OF[other] >= LAYER_OF[source]:
                wrong.append(f"{module} imports {target} ({source}: layer {LAYER_OF[source]}, "
                             f"{other}: layer {LAYER_OF[other]})")
    return wrong


def test_imports_go_down_the_layers():
    assert layer_violations(GRAPH) == []


def test_the_layer_check_finds_an_upward_import():
    assert layer_violations({"mft_hpc.report.build": {"mft_hpc.controller.submit"},
                             "mft_hpc.controller.submit": {"mft_hpc.report.build"}}) == [
        "mft_hpc.report.build imports mft_hpc.controller.submit (report: layer 7, controller: layer 9)"]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles():
    # a package's __init__ importing its own modules is not a cycle: they reach it only by being imported
    graph = {module: {t for t in targets if not module.startswith(t + ".")} for module, targets in GRAPH.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_modules_fit_on_a_few_screens():
    long = {module: n for module, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES and module not in LONGER_ALLOWED}
    assert long == {}


def test_architecture_page_lists_the_layers():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for rank, names in enumerate(LAYERS):
        row = f"| {rank} | " + ", ".join(f"`{name}`" for name in names) + " |"
        assert row in page, f"docs/architecture.md: missing or changed layer row {row!r}"


def test_the_vocabulary_and_the_worker_import_nothing_from_the_project():
    assert GRAPH["mft_hpc.tasks.names"] == set()
    worker = {m for m in MODULES if m.startswith("mft_hpc.evaluate.worker")}
    assert {m: GRAPH[m] - worker for m in worker if GRAPH[m] - worker} == {}
