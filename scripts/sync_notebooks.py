"""Keep each notebook pair in step: notebooks/NAME.py (percent format, the reviewed source) and
notebooks/NAME.ipynb (the same cells, plus the outputs of one rendered run).

    python scripts/sync_notebooks.py [NAME ...]

For each notebook (default: every notebooks/NN_*.py) it

1. writes the Colab badge and the first code cell from ``inpaintlib/notebook.py`` (``badge_markdown``,
   ``setup_cell_source``) into the .py, so that a fork changes ``REPO_URL`` there and nothing else;
2. writes the .ipynb from the .py with jupytext, keeping the outputs of every code cell whose source is
   unchanged (an edited cell loses its outputs, and the notebook's code hash no longer matches, so
   ``tests/test_notebook_pairs.py`` asks for ``python scripts/render_notebooks.py NAME``).

Outputs live in the .ipynb only; ``scripts/render_notebooks.py`` makes them. ``code_hash`` is the hash
that the render stores and the test checks. Needs jupytext and nbformat (requirements.txt).
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
FORMAT = "py:percent"
META_KEY = "inpaintlib"  # nb.metadata[META_KEY] = {"code_sha256": ..., "render": ...}; not in the .py
BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def notebook_names() -> list:
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))


def code_hash(nb) -> str:
    """sha256 of the notebook's code cells, in order (markdown edits do not change it)."""
    sources = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    return hashlib.sha256(json.dumps(sources, ensure_ascii=False).encode("utf-8")).hexdigest()


def stored_hash(nb) -> str | None:
    """The code hash recorded by the last render, None if never rendered."""
    return nb.metadata.get(META_KEY, {}).get("code_sha256")


def with_first_cells(nb, name: str):
    """``nb`` with its badge and first code cell written from ``inpaintlib/notebook.py``."""
    from inpaintlib.notebook import badge_markdown, setup_cell_source

    first = nb.cells[0]
    if first.cell_type == "markdown":
        first.source = BADGE.sub(lambda _: badge_markdown(name), first.source, count=1)
    code = next(cell for cell in nb.cells if cell.cell_type == "code")
    code.source = setup_cell_source(name)
    return nb


def sync(name: str, folder: Path = NOTEBOOK_DIR) -> Path:
    """Bring notebooks/<name>.ipynb in step with notebooks/<name>.py; return the .ipynb's path."""
    import jupytext
    import nbformat
    from jupytext.combine import combine_inputs_with_outputs

    py_path, ipynb_path = folder / f"{name}.py", folder / f"{name}.ipynb"
    if not py_path.is_file():
        raise FileNotFoundError(f"{py_path} does not exist")
    text = py_path.read_text(encoding="utf-8")
    source = with_first_cells(jupytext.reads(text, fmt=FORMAT), name)
    new_text = jupytext.writes(source, fmt=FORMAT)
    if new_text != text:
        py_path.write_text(new_text, encoding="utf-8")
    source = jupytext.reads(new_text, fmt=FORMAT)
    if ipynb_path.is_file():
        old = nbformat.read(ipynb_path, as_version=4)
        nb = combine_inputs_with_outputs(source, old, fmt=FORMAT)
        if META_KEY in old.metadata:
            nb.metadata[META_KEY] = old.metadata[META_KEY]
    else:
        nb = source
    for cell in nb.cells:  # cell metadata stays out of the pair (jupytext.toml: cell_metadata_filter = -all)
        if cell.cell_type == "code" and not cell.get("outputs"):
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, ipynb_path)
    return ipynb_path


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: every notebooks/NN_*.py)")
    args = parser.parse_args(argv)
    for name in args.names or notebook_names():
        path = sync(Path(name).stem)
        print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
