"""The package's layers (docs/layout.md): imports run one way, read from the source (ast), imports inside
functions included.

    core      the top-level modules and packages of inpaintlib/ but registry.py, demo.py, notebook.py,
              __main__.py, __init__.py and the widget/ package: imports only the core
    systems   inpaintlib/mnist/ and inpaintlib/freeform/: import the core and themselves, never the other
              system
    on top    registry, demo, notebook, widget/, __main__ and the package's __init__ (its public names):
              may import anything; nothing below imports them
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "inpaintlib"
SYSTEMS = ("mnist", "freeform")
TOP = ("registry", "demo", "notebook", "widget", "__main__")


def module_name(path: Path, root: Path = ROOT) -> str:
    """inpaintlib/mnist/recipe.py -> "inpaintlib.mnist.recipe"; a package's __init__.py -> the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(root: Path = ROOT) -> dict:
    return {module_name(p, root): p for p in sorted((root / "inpaintlib").rglob("*.py")) if "__pycache__" not in p.parts}


MODULES = package_modules()


def layer(module: str) -> str | None:
    """"core", "mnist", "freeform" or "top" for a module of the package; None for any other module."""
    parts = module.split(".")
    if parts[0] != "inpaintlib":
        return None
    if len(parts) == 1 or parts[1] in TOP:
        return "top"  # the package itself is its __init__: the public names, above everything
    if parts[1] in SYSTEMS:
        return parts[1]
    return "core"


def imported_modules(path: Path, root: Path = ROOT, modules: dict = MODULES) -> list[tuple[int, str]]:
    """(line, module) of every import in a module of the package, anywhere in it (functions too),
    relative imports resolved; ``from x import y`` names x.y where y is a module of the package."""
    here = module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module
            for alias in node.names:
                sub = f"{origin}.{alias.name}"
                found.append((node.lineno, sub if sub in modules else origin))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))  # importlib.import_module("inpaintlib.x")
    return sorted(found)


def allowed(source: str, target: str) -> bool:
    if source == "top" or target is None:
        return True
    if source == "core":
        return target == "core"
    return target in ("core", source)  # a system: the core and itself


def violations(path: Path, root: Path = ROOT, modules: dict = MODULES) -> list[str]:
    source = layer(module_name(path, root))
    out = []
    for line, target in imported_modules(path, root, modules):
        if not allowed(source, layer(target)):
            out.append(f"{path.relative_to(root)}:{line} ({source}) imports {target} ({layer(target)})")
    return out


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way(module):
    bad = violations(MODULES[module])
    if bad:
        pytest.fail("an import against the layers of docs/layout.md:\n" + "\n".join(bad), pytrace=False)


def test_every_module_has_its_layer():
    layers = {m: layer(m) for m in MODULES}
    assert layers["inpaintlib.schedule"] == layers["inpaintlib.samplers"] == "core"
    assert layers["inpaintlib.mnist.recipe"] == "mnist" and layers["inpaintlib.freeform.model"] == "freeform"
    assert layers["inpaintlib"] == layers["inpaintlib.registry"] == layers["inpaintlib.widget.ui"] == "top"
    assert {"core", "mnist", "freeform", "top"} == set(layers.values())


def test_the_checker_sees_every_kind_of_import(tmp_path):
    """Absolute, relative, inside a function, importlib: each import found, each one against the rule reported."""
    folder = tmp_path / "inpaintlib"
    for name in ("__init__.py", "schedule.py", "registry.py", "mnist/__init__.py", "mnist/model.py",
                 "freeform/__init__.py"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("")
    (folder / "core_x.py").write_text(
        "import torch\nfrom .schedule import NoiseSchedule\nfrom . import schedule\n"
        "def f():\n    from .mnist.model import ModelConfig\n    import inpaintlib.registry\n"
        "from inpaintlib import mnist\nimport importlib\nimportlib.import_module('inpaintlib.demo')\n"
        "from . import center_hole\n")
    (folder / "mnist" / "y.py").write_text("from ..schedule import NoiseSchedule\nfrom .model import ModelConfig\n"
                                           "from . import model\nfrom .. import freeform\nfrom ..registry import pretrained\n")
    modules = package_modules(tmp_path)
    core = violations(folder / "core_x.py", tmp_path, modules)
    system = violations(folder / "mnist" / "y.py", tmp_path, modules)
    assert [v.split(" imports ")[1] for v in core] == [
        "inpaintlib.mnist.model (mnist)", "inpaintlib.registry (top)", "inpaintlib.mnist (mnist)",
        "inpaintlib.demo (top)", "inpaintlib (top)"]
    assert core[0].startswith("inpaintlib/core_x.py:5 (core)")
    assert [v.split(" imports ")[1] for v in system] == ["inpaintlib.freeform (freeform)", "inpaintlib.registry (top)"]
