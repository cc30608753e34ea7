"""Render the notebooks: run each one top to bottom and commit its outputs, so that it reads on GitHub.

    python scripts/render_notebooks.py [NAME ...]

For each notebook (default: all eight, in order) it syncs the pair (``scripts/sync_notebooks.py``), clears
every output and the folders the notebook writes under outputs/ (``FAST_OUTPUTS``), executes the notebook
with nbclient from notebooks/ as Jupyter would, in fast mode (INPAINTLIB_FAST=1) on the CPU (CUDA hidden),
with Python's, NumPy's and torch's seeds fixed, and writes the outputs into the .ipynb only (the .py stays
the source, without outputs). Figures are PNG at
``DPI`` dots per inch; stderr (progress bars, warnings) is dropped; a notebook above ``MAX_BYTES`` is an
error. The .ipynb's metadata records the hash of its code cells (``code_hash``), which
``tests/test_notebook_pairs.py`` compares with the code as it is now, and ``notebooks/render_times.json``
records each notebook's wall time, size and figure count; the README's notebook table gets the times.

Needs jupytext, nbformat, nbclient and ipykernel (requirements.txt). The outputs of one run differ from
another's only where the notebooks print wall times.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from sync_notebooks import META_KEY, NOTEBOOK_DIR, code_hash, notebook_names, sync  # scripts/ is on sys.path

DPI = 72  # inline figures: enough for a 28x28 digit grid, small enough for the size limit
MAX_BYTES = 4_000_000
TIMES = NOTEBOOK_DIR / "render_times.json"
# what the notebooks write under outputs/ in fast mode; removed before each render, so that every run
# starts from a clean state (a resumed training run would otherwise print other numbers)
FAST_OUTPUTS = {"03_training": ["inpaint_fast"], "04_ddim_inpainting": ["04_ddim_inpainting"],
                "05_evaluation": ["05_evaluation"], "06_interactive": ["06_interactive"],
                "07_free_form_inpainting": ["07_free_form_fast"], "08_beyond_replacement": ["08_beyond_replacement"]}
CHECK_MARK = "NBVAL_CHECK_OUTPUT"  # nbval compares these cells' stdout with the committed one
PRELUDE = f"""\
%config InlineBackend.figure_formats = ["png"]
%config InlineBackend.rc = {{"figure.dpi": {DPI}, "savefig.dpi": {DPI}}}
import random as _random

import matplotlib as _matplotlib
import numpy as _numpy
import torch as _torch

_matplotlib.rcParams.update({{"figure.dpi": {DPI}, "savefig.dpi": {DPI}}})
_random.seed(0)
_numpy.random.seed(0)
_torch.manual_seed(0)
"""


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and CHECK_MARK in cell.source


def clean_outputs(nb) -> None:
    """Number the code cells 1, 2, ... as one top-to-bottom run; drop stderr and timing metadata; a
    checked cell keeps only its stdout (the reference nbval compares with)."""
    number = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        number += 1
        cell.execution_count = number
        cell.metadata.pop("execution", None)
        kept = []
        for out in cell.outputs:
            if out.output_type == "stream" and out.name == "stderr":
                continue
            if is_checked(cell) and not (out.output_type == "stream" and out.name == "stdout"):
                continue
            if "execution_count" in out:
                out.execution_count = number
            kept.append(out)
        cell.outputs = kept


def count_figures(nb) -> int:
    return sum(1 for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
               if "data" in out and ("image/png" in out.data or "image/gif" in out.data))


def render(name: str, timeout: int = 3600) -> dict:
    """Sync, execute and write notebooks/<name>.ipynb; return its record for render_times.json."""
    import nbformat
    from nbclient import NotebookClient

    import shutil

    for folder in FAST_OUTPUTS.get(name, []):
        shutil.rmtree(NOTEBOOK_DIR.parent / "outputs" / folder, ignore_errors=True)
    path = sync(name)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.cells.insert(0, nbformat.v4.new_code_cell(PRELUDE))
    env = {"INPAINTLIB_FAST": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONHASHSEED": "0"}
    saved = {key: os.environ.get(key) for key in (*env, "MPLBACKEND")}
    os.environ.update(env)
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend draws the figures
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            store_widget_state=False, resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    start = time.perf_counter()
    try:
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.perf_counter() - start
    nb.cells.pop(0)
    clean_outputs(nb)
    nb.metadata.pop("widgets", None)
    nb.metadata[META_KEY] = {"code_sha256": code_hash(nb),
                             "render": "python scripts/render_notebooks.py: fast mode, CPU, fixed seeds"}
    nbformat.write(nb, path)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise RuntimeError(f"{path.name} is {size / 1e6:.1f} MB, over the {MAX_BYTES / 1e6:.0f} MB limit: "
                           f"lower DPI in {Path(__file__).name} or show fewer figures")
    return {"seconds": round(seconds, 1), "megabytes": round(size / 1e6, 2), "figures": count_figures(nb)}


def machine() -> dict:
    import torch

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
            "note": "wall time of the whole notebook in fast mode on the CPU, as measured by this script"}


def update_readme(times: dict) -> None:
    """Write each notebook's measured fast-mode time into the README's notebook table (its third column)."""
    readme = NOTEBOOK_DIR.parent / "README.md"
    lines = readme.read_text(encoding="utf-8").split("\n")
    for k, line in enumerate(lines):
        for name, record in times.items():
            if line.startswith(f"| `notebooks/{name}` |"):
                cells = line.split(" | ")
                cells[2] = f"{record['seconds']:.0f} s"
                lines[k] = " | ".join(cells)
    readme.write_text("\n".join(lines), encoding="utf-8")


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: every notebooks/NN_*.py)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds a cell may take")
    args = parser.parse_args(argv)
    names = [Path(n).stem for n in args.names] or notebook_names()
    times = json.loads(TIMES.read_text()) if TIMES.is_file() else {}
    times.setdefault("notebooks", {})
    failed = []
    for name in names:
        print(f"rendering {name} ...", flush=True)
        try:
            record = render(name, args.timeout)
        except Exception as error:  # report it, and render the others
            print(f"  FAILED: {str(error)[-3000:]}", flush=True)
            failed.append(name)
            continue
        times["notebooks"][name] = record
        times["machine"] = machine()
        times["notebooks"] = dict(sorted(times["notebooks"].items()))
        TIMES.write_text(json.dumps(times, indent=2) + "\n")
        print(f"  {record['seconds']:.0f} s, {record['megabytes']:.2f} MB, {record['figures']} figures", flush=True)
        update_readme(times["notebooks"])
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
