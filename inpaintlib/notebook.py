"""What the numbered notebooks share: the repository's address, the Colab set-up, fast mode, and
the choice of which trained model notebooks 04 and 05 use.

    REPO_URL, colab_url(name), badge_markdown(name)   the one place the public address is written
    setup()                                            the set-up every notebook runs first
    FAST, sizes(fast=..., full=...)                    fast mode (INPAINTLIB_FAST=1): smaller sizes only
    TRAIN_SIZES, choose_checkpoint()                   which checkpoint 04 and 05 inpaint with, and why

A notebook's first code cell cannot import this module on Colab before the repository is there, so
that cell (``setup_cell_source()``) carries the clone address itself; ``tests/test_notebook_pairs.py``
checks that every notebook's copy equals the text built here from ``REPO_URL``.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from .utils import in_colab

# ----------------------------------------------------------------------------------------------
# the repository's public address: written here and nowhere else

REPO_URL = "https://github.com/inpaintlib/inpaintlib"
BRANCH = "main"
COLAB_BASE = "https://colab.research.google.com/github/"
COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_REPO_DIR = "/content/inpaintlib"  # where the set-up cell clones the repository on Colab

NOTEBOOKS = ("01_noise_schedule", "02_unet_blocks", "03_training", "04_ddim_inpainting", "05_evaluation",
             "06_interactive", "07_free_form_inpainting", "08_beyond_replacement")


def colab_url(name: str) -> str:
    """The address that opens ``notebooks/<name>.ipynb`` of the repository in Colab."""
    if not REPO_URL.startswith("https://github.com/"):
        raise ValueError(f"REPO_URL must be a https://github.com/ address, got {REPO_URL!r}")
    owner_repo = REPO_URL.removeprefix("https://github.com/").rstrip("/")
    return f"{COLAB_BASE}{owner_repo}/blob/{BRANCH}/notebooks/{name}.ipynb"


def badge_markdown(name: str) -> str:
    """The "Open in Colab" badge, as markdown, for notebook ``name``."""
    return f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({colab_url(name)})"


def setup_cell_source() -> str:
    """The first code cell of every notebook, exactly as it must appear there."""
    return f'''\
# Set-up: on Colab, fetch the repository and install it without touching Colab's torch and
# torchvision; elsewhere, use the checkout this notebook is in. Safe to run again (Run all).
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    REPO_DIR = "{COLAB_REPO_DIR}"
    REPO_URL = "{REPO_URL}"  # = inpaintlib.notebook.REPO_URL (a test checks)
    if not os.path.isdir(os.path.join(REPO_DIR, ".git")):
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, REPO_DIR], check=True)
elif os.path.isfile(os.path.join("..", "inpaintlib", "__init__.py")):
    REPO_DIR = os.path.abspath("..")  # started from notebooks/ in a checkout
else:
    REPO_DIR = os.getcwd()
if REPO_DIR not in sys.path:
    sys.path.insert(0, REPO_DIR)

from inpaintlib.notebook import setup

env = setup(REPO_DIR)'''


# ----------------------------------------------------------------------------------------------
# fast mode


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


FAST = _flag(os.environ.get("INPAINTLIB_FAST"))


def sizes(fast, full, fast_mode: bool | None = None):
    """``fast`` under INPAINTLIB_FAST=1, else ``full``. Two dicts with the same keys give a namespace
    (``S = sizes(fast=dict(n=8), full=dict(n=64)); S.n``); anything else is returned as it is."""
    use_fast = FAST if fast_mode is None else fast_mode
    if isinstance(fast, dict) or isinstance(full, dict):
        if not (isinstance(fast, dict) and isinstance(full, dict)):
            raise ValueError("sizes: fast and full must both be dicts, or neither")
        if set(fast) != set(full):
            raise ValueError(f"sizes: fast and full must name the same sizes, got {sorted(fast)} and {sorted(full)}")
        return SimpleNamespace(**(fast if use_fast else full))
    return fast if use_fast else full


# ----------------------------------------------------------------------------------------------
# set-up

# what Colab may lack; torch and torchvision are deliberately absent (Colab's own builds stay)
LIGHT_DEPS = {"numpy": "numpy>=1.23", "matplotlib": "matplotlib>=3.6", "tqdm": "tqdm>=4.64", "PIL": "pillow>=9.0"}


def find_root(start=None) -> Path:
    """The repository root: the folder holding both ``inpaintlib/`` and ``notebooks/``."""
    candidates = [Path(start)] if start is not None else []
    candidates += [Path(__file__).resolve().parent.parent, Path.cwd()]
    for base in candidates:
        for folder in (base.resolve(), *base.resolve().parents):
            if (folder / "inpaintlib" / "__init__.py").is_file() and (folder / "notebooks").is_dir():
                return folder
    raise FileNotFoundError("could not find the inpaintlib repository (a folder holding inpaintlib/ and "
                            f"notebooks/) from {[str(c) for c in candidates]}")


def installed_from(repo_dir) -> bool:
    """Whether pip has inpaintlib installed (editable or not) from the folder ``repo_dir``."""
    import json
    from importlib.metadata import distributions

    # several may be visible (the build leaves an inpaintlib.egg-info in the repository, which is on
    # sys.path); only an installed one records where it came from, in direct_url.json
    uri = Path(repo_dir).resolve().as_uri()
    for dist in distributions(name="inpaintlib"):
        origin = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
        if origin.rstrip("/") == uri:
            return True
    return False


def colab_install(repo_dir) -> list:
    """On Colab: ``pip install --no-deps -e`` the repository (so torch and torchvision are never
    reinstalled), then pip-install only the light dependencies that are missing. Does nothing the
    second time. Returns the pip commands it ran."""
    ran = []
    if not installed_from(repo_dir):
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(repo_dir)]
        subprocess.run(cmd, check=True)
        ran.append(cmd)
    missing = [spec for module, spec in LIGHT_DEPS.items() if importlib.util.find_spec(module) is None]
    if missing:
        cmd = [sys.executable, "-m", "pip", "install", "-q", *missing]
        subprocess.run(cmd, check=True)
        ran.append(cmd)
    return ran


def setup(repo_dir=None, verbose: bool = True) -> SimpleNamespace:
    """Run by every notebook's first cell: install on Colab, move to the repository root (so that
    ``data/`` and ``outputs/`` mean the repository's folders), create ``outputs/``, pick the device.

    Returns a namespace: root, device, fast, colab."""
    colab = in_colab()
    root = find_root(repo_dir)
    if colab:
        colab_install(root)
    os.chdir(root)
    (root / "outputs").mkdir(exist_ok=True)
    from .utils import setup_cuda_device

    device = setup_cuda_device()
    if verbose:
        import torch

        where = "Colab" if colab else "local"
        mode = "FAST (INPAINTLIB_FAST=1: small sizes)" if FAST else "full"
        gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
        print(f"inpaintlib from {root} | {where} | mode: {mode} | device: {device}{gpu} | torch {torch.__version__}")
        if colab and device.type != "cuda":
            print("no GPU in this Colab runtime: Runtime > Change runtime type > GPU, then Run all again")
    return SimpleNamespace(root=root, device=device, fast=FAST, colab=colab)


# ----------------------------------------------------------------------------------------------
# the model notebooks 04 and 05 use

LEARNER_CKPT = Path("outputs/inpaint/last.pt")  # what 03_training writes in full mode
FAST_CKPT = Path("outputs/inpaint_fast/last.pt")  # what 03_training writes in fast mode

# 03_training's sizes: full = the design document's command; fast = a smoke run of the same code
TRAIN_SIZES = dict(
    fast=dict(epochs=1, batch_size=16, sample_every=20, sample_steps=10, warmup_steps=20, max_steps=40,
              train_subset=1024, out_dir=str(FAST_CKPT.parent)),
    full=dict(epochs=25, batch_size=128, sample_every=400, sample_steps=50, warmup_steps=1000, max_steps=None,
              train_subset=None, out_dir=str(LEARNER_CKPT.parent)),
)

# the rest of the design document's training command (identical in both modes)
DESIGN_TRAIN_ARGS = dict(lr=2e-4, steps=400, center_box=12, dc_repeats=2, dc_fixed_z=True, pred="v", p2_k=1.0,
                         p2_gamma=1.0, hole_weight=5.0, seed=42, clip_grad=1.0, ema_decay=0.999, self_cond=True,
                         eta=0.0, coord_conv=True, grad_accum=1)


def choose_checkpoint(learner=LEARNER_CKPT, fast_run=FAST_CKPT, train_if_missing: bool = True,
                      verbose: bool = True) -> Path:
    """The checkpoint notebooks 04 and 05 inpaint with, in this order of preference:

    1. ``learner`` (outputs/inpaint/last.pt): a model you trained yourself in 03_training (full mode);
    2. the shipped model, ``pretrained("mnist")``, so that fast mode shows real inpainting;
    3. ``fast_run`` (outputs/inpaint_fast/last.pt): the smoke-run model 03_training writes in fast mode;
    4. none of these: train one now with 03_training's arguments (fast sizes under INPAINTLIB_FAST=1).
    Prints which one it took and why."""
    from .registry import pretrained

    def say(text):
        if verbose:
            print(text)

    learner, fast_run = Path(learner), Path(fast_run)
    if learner.is_file():
        say(f"using {learner}: the model you trained in 03_training (delete it to use the shipped model)")
        return learner
    try:
        path = pretrained("mnist")
        say(f"using the shipped model {path.name} (pretrained('mnist')): {learner} does not exist, "
            f"so you have not trained your own yet")
        return path
    except FileNotFoundError:
        pass
    if fast_run.is_file():
        say(f"using {fast_run}: no model of yours ({learner}) and no shipped model in this copy, so the "
            f"small fast-mode model from 03_training (expect blurry fills)")
        return fast_run
    if not train_if_missing:
        raise FileNotFoundError(f"no checkpoint: neither {learner}, the shipped model, nor {fast_run} exists")
    from .mnist.recipe import train

    S = sizes(**TRAIN_SIZES)
    say(f"no checkpoint anywhere ({learner}, the shipped model, {fast_run}): training one now into "
        f"{S.out_dir} with 03_training's arguments")
    result = train(**DESIGN_TRAIN_ARGS, **vars(S), resume=True, progress=False)
    return Path(result.checkpoint)


# ----------------------------------------------------------------------------------------------
# maintainer tools: keep each .py/.ipynb pair in step, outputs stripped
#
#     python -m inpaintlib.notebook sync [--record] [NAME ...]
#
# ``sync`` writes notebooks/NAME.ipynb from notebooks/NAME.py (the reviewed source) and strips every
# output except the reference output of ``# NBVAL_CHECK_OUTPUT`` cells, which nbval compares against.
# ``--record`` runs the notebook (in fast mode, in this process) to refresh those reference outputs.
# Needs jupytext and nbformat (the dev extras).

CHECK_MARK = "NBVAL_CHECK_OUTPUT"


def is_checked(cell) -> bool:
    """A code cell whose output nbval compares (``# NBVAL_CHECK_OUTPUT`` in its source)."""
    return cell.get("cell_type") == "code" and CHECK_MARK in cell.get("source", "")


def strip_outputs(nb):
    """Clear outputs and execution counts. A checked cell keeps its stdout text (nbval's reference) and,
    since nbval refuses a reference output from a cell marked as never run, its position among the
    code cells as its execution count."""
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    for number, cell in enumerate(code_cells, start=1):
        cell.execution_count = None
        if is_checked(cell):
            cell.outputs = [o for o in cell.outputs if o.get("output_type") == "stream" and o.get("name") == "stdout"]
            if cell.outputs:
                cell.execution_count = number
        else:
            cell.outputs = []
    return nb


def record_checked_outputs(nb, cwd) -> None:
    """Execute the notebook's code cells in this process (fast mode, Agg backend, in ``cwd``) and store
    the stdout of each checked cell as its output."""
    import contextlib
    import io

    import matplotlib
    import nbformat

    matplotlib.use("Agg")
    old_cwd, old_env = os.getcwd(), os.environ.get("INPAINTLIB_FAST")
    os.environ["INPAINTLIB_FAST"] = "1"
    global FAST
    old_fast, FAST = FAST, True
    namespace = {"__name__": "__main__"}
    try:
        os.chdir(cwd)
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                exec(compile(cell.source, "<cell>", "exec"), namespace)
            import matplotlib.pyplot as plt

            plt.close("all")
            if is_checked(cell):
                text = buffer.getvalue()
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)] if text else []
    finally:
        os.chdir(old_cwd)
        FAST = old_fast
        if old_env is None:
            os.environ.pop("INPAINTLIB_FAST", None)
        else:
            os.environ["INPAINTLIB_FAST"] = old_env


def sync(name: str, record: bool = False, folder=None) -> Path:
    """Bring notebooks/<name>.ipynb in step with notebooks/<name>.py (the source): ``jupytext --sync``
    with the .py taken as the newer side, then strip outputs (and refresh the checked cells' reference
    outputs with ``record``)."""
    import nbformat
    from jupytext.cli import jupytext as jupytext_cli

    folder = Path(folder) if folder is not None else find_root() / "notebooks"
    py_path, ipynb_path = folder / f"{name}.py", folder / f"{name}.ipynb"
    if not py_path.is_file():
        raise FileNotFoundError(f"{py_path} does not exist")
    py_path.touch()  # the .py is the reviewed source: make it the newer side of the pair
    jupytext_cli(["--sync", "--quiet", str(py_path)])
    nb = nbformat.read(ipynb_path, as_version=4)
    if record:
        record_checked_outputs(nb, folder)
    strip_outputs(nb)
    nbformat.write(nb, ipynb_path)
    return ipynb_path


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m inpaintlib.notebook")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sync", help="write each .ipynb from its .py, outputs stripped")
    p.add_argument("names", nargs="*", help="notebook names (default: every notebooks/NN_*.py)")
    p.add_argument("--record", action="store_true", help="run the notebook to refresh checked outputs")
    args = parser.parse_args(argv)
    names = args.names or sorted(p.stem for p in (find_root() / "notebooks").glob("[0-9][0-9]_*.py"))
    for name in names:
        name = Path(name).stem
        print(f"{sync(name, record=args.record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
