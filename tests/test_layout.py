"""The package keeps its shape: imports run one way, no name hides a module, files stay readable."""
from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import inpaintlib

PACKAGE = Path(inpaintlib.__file__).parent
MAX_LINES = 650

# every public name of the two design documents (../shared/seeds/) and of the calls the README shows
SEED_NAMES = ("train", "sample_cmd", "eval_cmd", "train_inpainting", "inpaint_image", "InpaintingUNET", "UNET",
              "UnetLayer", "DDPM_Scheduler", "InpaintingDataset", "ResBlock", "Attention", "SinusoidalEmbeddings",
              "set_seed", "seed_all", "setup_cuda_device", "display_reverse")
README_NAMES = ("load_model", "inpaint", "pretrained", "center_hole", "load_test_images", "InpaintWidget")


def modules() -> dict:
    """dotted name -> path, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imported(name: str, path: Path) -> list:
    """(module imported, names, line) for every import of a package module in ``path``, function-level too."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "inpaintlib":
                found.append((target, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "inpaintlib"]
    return found


def dependency_graph() -> dict:
    mods = modules()
    graph = {}
    for name, path in mods.items():
        deps = set()
        for target, names, _ in imported(name, path):
            for cand in [f"{target}.{n}" for n in names] + [target]:
                if cand in mods:  # "from . import distributed" names a module
                    deps.add(cand)
                    if cand != target:
                        continue
            # importing a submodule runs its packages' __init__ too (but for the packages this module is in)
            parts = target.split(".")
            deps.update(".".join(parts[:k]) for k in range(2, len(parts))
                        if ".".join(parts[:k]) in mods and not (name + ".").startswith(".".join(parts[:k]) + "."))
        deps.discard(name)
        deps.discard("inpaintlib")
        graph[name] = deps
    return graph


def test_no_import_cycle_inside_the_package():
    graph = dependency_graph()
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_public_name_shadows_a_submodule():
    for info in pkgutil.walk_packages(inpaintlib.__path__, "inpaintlib."):
        parent_name, _, child = info.name.rpartition(".")
        parent = importlib.import_module(parent_name)
        module = importlib.import_module(info.name)
        value = getattr(parent, child)
        assert value is module, f"{parent_name}.{child} is {value!r}, not the module {info.name}"


def test_every_import_inside_the_package_names_a_module_that_exists():
    mods = modules()
    bad = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}" for name, path in mods.items()
           for target, names, line in imported(name, path)
           if target not in mods and not all(f"{target}.{n}" in mods for n in names)]
    assert not bad, bad


def test_no_private_name_is_imported_across_modules():
    bad = [f"{path.relative_to(PACKAGE.parent)}:{line} imports {n} from {target}"
           for name, path in modules().items() for target, names, line in imported(name, path)
           for n in names if n.startswith("_") and not n.startswith("__")]
    assert not bad, bad


def test_no_module_is_over_650_lines():
    long = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules: {long}"


def test_every_public_name_of_the_seed_documents_is_exported():
    missing = [n for n in SEED_NAMES + README_NAMES if not hasattr(inpaintlib, n)]
    assert not missing, missing
    assert inpaintlib.seed_all is inpaintlib.set_seed
