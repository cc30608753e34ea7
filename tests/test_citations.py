"""Every module or name a docstring cites exists.

A docstring of inpaintlib/ (module, class or function; and of the .py files in benchmarks/ and scripts/)
cites the package two ways:
    ``samplers.ddim_inpaint`` / `metrics.HoleMetrics`    a backticked dotted name whose first part is a
                                                         module of the package (resolved relative to
                                                         inpaintlib/, or inside a subpackage to its sibling
                                                         modules first: ``recipe.hole_loss`` in freeform/)
    inpaintlib/masks.py: random_hole                     a file of the package and a name in it
A citation of a module the package no longer has (``sampling.X``, ``evaluate.X``) is stale and fails too.
Other dotted names are not citations of the package and are skipped: ``torch.compile``, ``self.image``,
``cfg.grad_accum``, a parameter of the documented function (``classifier.temperature``), a file name.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "inpaintlib"
# modules the package once had (git log --no-renames --diff-filter=D -- inpaintlib): citing one is stale
RETIRED = {"data", "evaluate", "freeform_data", "model", "pretrained", "sampling", "train"}
DOTTED = re.compile(r"(?<!`)``?([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?:\([^`]*\))?``?(?!`)")
# ``gaussian.py``, ``last.pt``: file names, not citations of a name
EXTENSIONS = {"py", "pt", "md", "json", "png", "gif", "csv", "txt", "js", "css", "npz", "ipynb", "toml", "yaml", "sh"}
FILE_NAME = re.compile(r"inpaintlib/((?:\w+/)*\w+)\.py:\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")


def package_modules() -> set[str]:
    """Dotted names of the package's modules, relative to inpaintlib: "masks", "mnist", "freeform.recipe", ..."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and parts[0] != "__main__":
            names.add(".".join(parts))
    return names


MODULES = package_modules()
PUBLIC = set(importlib.import_module("inpaintlib").__all__)


def sources() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py")) + sorted(
        (ROOT / "scripts").glob("*.py"))
    return [f for f in files if "__pycache__" not in f.parts]


def docstrings(tree: ast.Module):
    """(first line, text, names local to the documented object) of each docstring in a module."""
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if not (node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
                and isinstance(node.body[0].value.value, str)):
            continue
        local = {"self", "cls"}
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            local |= {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
            local |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        yield node.body[0].value.lineno, node.body[0].value.value, local


def citing_package(path: Path, package: Path = PACKAGE) -> str | None:
    """The subpackage a file of inpaintlib/ sits in, relative to inpaintlib ("" at the top; None outside)."""
    if package not in path.parents:
        return None
    return ".".join(path.parent.relative_to(package).parts)


def module_of(dotted: str, here: str | None, own: tuple[str, set] | None = None) -> tuple[str, list[str]] | None:
    """Split a dotted citation into (the package module it names, the names after it), or None when it is
    not a citation of the package. Longest module first; in a subpackage its siblings before the top.
    ``HoleMetrics.summary``: a public name of the package (``__all__``), or with ``own`` = (the citing
    module, its top-level names) a name of the citing module, and an attribute of it."""
    parts = dotted.split(".")
    if own is not None and parts[0] in own[1]:
        return own[0], parts
    if parts[0] in PUBLIC:
        return "", parts
    if parts[0] == "inpaintlib":
        parts = parts[1:]
        if not parts:
            return None
        if parts[0] not in MODULES and parts[0] not in RETIRED:
            return "", parts  # a public name of the package: ``inpaintlib.inpaint``
    prefixes = [here] if here else []
    for prefix in prefixes + [""]:
        for n in range(len(parts), 0, -1):
            name = ".".join(([prefix] if prefix else []) + parts[:n])
            if name in MODULES:
                return name, parts[n:]
    if parts[0] in RETIRED:
        return parts[0], parts[1:]
    return None


def has_attribute(obj, name: str) -> bool:
    """``obj.name`` exists: an attribute, a dataclass field, or an instance attribute a class sets."""
    if hasattr(obj, name):
        return True
    if inspect.isclass(obj):
        if name in getattr(obj, "__dataclass_fields__", {}) or name in getattr(obj, "__annotations__", {}):
            return True
        try:
            source = inspect.getsource(obj)
        except (OSError, TypeError):
            return False
        return bool(re.search(rf"self\.{name}\s*[:=]|register_(?:buffer|parameter)\(\s*[\"']{name}[\"']", source))
    return False


def resolve(module: str, names: list[str]) -> str | None:
    """None when inpaintlib.<module>.<names...> exists, else why not."""
    target = "inpaintlib" + (f".{module}" if module else "")
    if module.split(".")[0] in RETIRED and module not in MODULES:
        return f"the package has no module {module!r} any more"
    obj = importlib.import_module(target)
    for name in names:
        if inspect.ismodule(obj) and f"{obj.__name__[len('inpaintlib.'):]}.{name}".lstrip(".") in MODULES:
            obj = importlib.import_module(f"{obj.__name__}.{name}")
        elif has_attribute(obj, name):
            obj = getattr(obj, name, None)
            if obj is None:
                return None  # an instance attribute or a field without a default: it exists, stop here
        else:
            return f"{getattr(obj, '__name__', obj)!s} has no {name!r}"
    return None


def citations(path: Path, package: Path = PACKAGE):
    """(line, citation as written, module, names) of every citation of the package in a file's docstrings."""
    here = citing_package(path, package)
    tree = ast.parse(path.read_text(), str(path))
    own = None
    if here is not None and package == PACKAGE:  # the names a module of the package defines itself
        module = ".".join(path.relative_to(package).with_suffix("").parts).removesuffix("__init__").rstrip(".")
        own = module, {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    for first_line, text, local in docstrings(tree):
        for match in DOTTED.finditer(text):
            dotted = match.group(1)
            if dotted.split(".")[0] in local or dotted.rsplit(".", 1)[1] in EXTENSIONS:
                continue
            found = module_of(dotted, here, own)
            if found is not None:
                yield first_line + text[:match.start()].count("\n"), match.group(0), *found
        for match in FILE_NAME.finditer(text):
            module = match.group(1).replace("/", ".").removesuffix(".__init__")
            line = first_line + text[:match.start()].count("\n")
            if module not in MODULES:
                yield line, match.group(0), module.split(".")[0] if module.split(".")[0] in RETIRED else module, []
                continue
            yield line, match.group(0), module, match.group(2).split(".")


def stale(path: Path, root: Path = ROOT) -> list[str]:
    """"file:line: citation: why" for each citation in ``path`` that does not resolve."""
    out = []
    for line, written, module, names in citations(path, root / "inpaintlib"):
        if module not in MODULES and module.split(".")[0] not in RETIRED and module:
            why = f"the package has no module {module!r}"
        else:
            why = resolve(module, names)
        if why:
            out.append(f"{path.relative_to(root)}:{line}: {written}: {why}")
    return out


@pytest.mark.parametrize("path", sources(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_citation_in_the_docstrings_exists(path):
    bad = stale(path)
    if bad:
        pytest.fail("docstrings cite what does not exist:\n" + "\n".join(bad), pytrace=False)


# ----------------------------------------------------------------------------------------------
# the checker itself: it finds what it should, and only that


def check_text(tmp_path, text: str, sub: str = "") -> list[str]:
    """``stale`` on a module whose docstring is ``text``, placed as if it were inpaintlib/<sub>/x.py."""
    folder = tmp_path / "inpaintlib" / sub
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "x.py"
    path.write_text(f'"""{text}"""\n\n\ndef f(classifier, *rest, **options):\n    """``classifier.temperature``"""\n')
    return stale(path, tmp_path)


def test_the_checker_finds_stale_and_missing_citations(tmp_path):
    bad = check_text(tmp_path, "``sampling.ddim_inpaint``, `evaluate.HoleMetrics`, ``metrics.NoSuchName``,\n"
                               "``inpaintlib.nosuchmodule.f``, inpaintlib/sampling.py: ddim_inpaint, "
                               "``samplers.SAMPLERS.nope``, ``HoleMetrics.no_such_method``")
    assert len(bad) == 7, bad
    assert "no module 'sampling'" in bad[0] and "no module 'evaluate'" in bad[1] and "'NoSuchName'" in bad[2]
    assert "x.py:1:" in bad[0]


def test_the_checker_resolves_and_skips(tmp_path):
    ok = ("``samplers.SAMPLERS``, `metrics.HoleMetrics`, ``metrics.HoleMetrics.summary()``, ``reverse.Denoiser.nfe``,\n"
          "``freeform.baseline.telea_inpaint``, ``mnist.recipe``, ``inpaintlib.reverse.ddim_step``, ``inpaintlib.inpaint``\n"
          "inpaintlib/masks.py: random_hole, ``FreeformConfig.objective`` (no module), ``torch.compile``, ``self.x``,\n"
          "``cfg.grad_accum``, ``last.pt``, ``samplers.py``")
    assert check_text(tmp_path, ok) == []
    assert check_text(tmp_path, "``recipe.hole_loss`` and ``data.InpaintingDataset``", sub="freeform") == []
    assert len(check_text(tmp_path, "``recipe.no_such_loss``", sub="freeform")) == 1
