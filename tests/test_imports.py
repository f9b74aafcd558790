"""The library's import graph has no circles, counting imports inside functions too, neither
between modules nor between its packages (core.data, core.models, core.trust, ...).

A circle hidden behind a function-level import works until someone moves that import to the top;
shared types belong a level below both modules (core.data.radiograph_meta, core.report.document).
Packages are layers: core.models (a checkpoint holds the OOD description and the temperatures)
imports core.trust, so core.trust reads a model through its feature API
(`core.trust.features.FeatureModel`) and never imports core.models.
"""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"


def module_name(path: Path) -> str:
    parts = ("cxr_attention", *path.relative_to(CORE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The `core` modules a file imports anywhere in its body (`from pkg import submodule` counts
    as the submodule, not as the package's __init__)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            found |= submodules & modules
            if not submodules <= modules:
                found.add(node.module)
    return found & modules


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for path in CORE.rglob("*.py")}
    names = set(files)
    return {name: imported_modules(path, names) - {name} for name, path in files.items()}


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph folded onto core's top-level packages and modules (core.models, ...)."""

    def package(name: str) -> str:
        return ".".join(name.split(".")[:3])

    top = "cxr_attention.core"
    folded: dict[str, set[str]] = {package(name): set() for name in graph if name != top}
    for name, targets in graph.items():
        if name != top:
            folded[package(name)] |= {package(t) for t in targets if t != top}
    return {name: targets - {name} for name, targets in folded.items()}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None (depth-first search, colouring nodes)."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], path[len(path) :] = "open", [node]
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (circle := visit(target)):
                return circle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (circle := visit(node)):
            return circle
    return None


def test_the_circle_finder_finds_a_circle():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


def test_core_has_no_import_circles():
    graph = import_graph()
    assert (
        graph["cxr_attention.core.data.dicom"] and graph["cxr_attention.core.report.render_md"]
    )  # the graph is real
    assert find_circle(graph) is None, " -> ".join(find_circle(graph) or [])


def test_core_packages_have_no_import_circles():
    packages = package_graph(import_graph())
    models, trust = "cxr_attention.core.models", "cxr_attention.core.trust"
    assert trust in packages[models]  # the graph is real: checkpoints read trust
    assert models not in packages[trust]
    assert find_circle(packages) is None, " -> ".join(find_circle(packages) or [])


def test_moved_types_stay_importable_where_callers_import_them():
    from cxr_attention.core.data import radiograph, radiograph_meta
    from cxr_attention.core.report import ComparisonReport, compare, document

    for name in ("LUMA_RGB", "MAX_PIXELS", "MIN_SIDE", "RadiographMeta", "check_size"):
        assert getattr(radiograph, name) is getattr(radiograph_meta, name)
    assert compare.ComparisonReport is ComparisonReport is document.ComparisonReport
    assert compare.Section is document.Section
