"""The benchmarks keep their shape: a small library and thin scripts, no path tricks, files that stay readable."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
MAX_LINES = 650  # the package's rule (tests/test_layout.py), for benchmarks/ and scripts/ too


def sources(*folders) -> list:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


@pytest.mark.parametrize("path", sources("inpaintlib", "benchmarks", "scripts"), ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_is_longer_than_the_rule(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(REPO)} has {n} lines (at most {MAX_LINES}): split it"


def test_benchmarks_and_scripts_import_without_editing_sys_path():
    """``python benchmarks/x.py`` puts benchmarks/ first on sys.path (scripts/ likewise), and the package is
    installed (``pip install -e .``); pytest's ``pythonpath`` does the same for benchmarks/."""
    offenders = [str(p.relative_to(REPO)) for p in sources("benchmarks") + sources("scripts")
                 if any(isinstance(node, ast.Attribute) and node.attr in ("insert", "append")
                        and isinstance(node.value, ast.Attribute) and node.value.attr == "path"
                        for node in ast.walk(ast.parse(p.read_text())))]
    assert not offenders, f"sys.path edited in {offenders}"
    assert "benchmarks" in (REPO / "pyproject.toml").read_text().split("pythonpath", 1)[1].split("\n", 1)[0]


def sibling_imports() -> dict:
    """benchmarks module -> the benchmarks modules it imports (at any level)."""
    names = {p.stem for p in sources("benchmarks")}
    graph = {}
    for path in sources("benchmarks"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                deps.add(node.module.split(".")[0])
        graph[path.stem] = deps & names
    return graph


def test_benchmark_imports_run_one_way():
    """benchlib and the speed harness import no script; no script imports another script; no cycle."""
    graph = sibling_imports()
    libraries = {"benchlib", "speed_harness", "speed_diffusers"}
    assert graph["benchlib"] == set() and graph["speed_harness"] == set()
    assert graph["speed_diffusers"] <= {"speed_harness"}
    for script, deps in graph.items():
        assert deps <= libraries, f"benchmarks/{script}.py imports the script(s) {sorted(deps - libraries)}"
