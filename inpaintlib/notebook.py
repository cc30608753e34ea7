"""What a numbered notebook's first cell needs: the repository's address, fast mode, and the set-up.

    REPO_URL, colab_url(name), badge_markdown(name)   the one place the public address is written
    setup_cell_source(name)                            the first code cell of notebook ``name``, verbatim
    setup(repo_dir, fast=...)                          the set-up that cell runs: install on Colab, move to
                                                       the repository root, pick the device, fix the mode
    FAST, sizes(fast=..., full=...)                    fast mode: smaller sizes, the same code

A notebook's first code cell cannot import this module on Colab before the repository is there, so
that cell carries the clone address itself. ``scripts/sync_notebooks.py`` writes each notebook's copy
from ``setup_cell_source`` (and its badge from ``badge_markdown``), and ``tests/test_notebook_pairs.py``
checks them: a fork changes ``REPO_URL`` here, runs that script, and every notebook follows.
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

# each notebook, and what its full mode (FAST = False) costs beyond the fast one
NOTEBOOKS = {
    "01_noise_schedule": "20,000 Monte Carlo chains instead of 2,000 (seconds more)",
    "02_unet_blocks": "the same as fast mode (this notebook has no sizes to shrink)",
    "03_training": "the design's 25 epochs (11,700 training steps): hours on a CPU, unmeasured on a GPU",
    "04_ddim_inpainting": "16 digits, 50 DDIM steps, sample_cmd at 400 steps: minutes on a CPU",
    "05_evaluation": "eval_cmd on 500 digits at 50 steps, three models: tens of minutes on a CPU",
    "06_interactive": "50 DDIM steps a run: seconds a run on a CPU",
    "07_free_form_inpainting": "6,000 training steps on 2,000 patterns: hours on a CPU, unmeasured on a GPU",
    "08_beyond_replacement": "200 digits at 10, 25 and 50 steps a sampler: an hour or more on a CPU",
}


def colab_url(name: str) -> str:
    """The address that opens ``notebooks/<name>.ipynb`` of the repository in Colab."""
    if not REPO_URL.startswith("https://github.com/"):
        raise ValueError(f"REPO_URL must be a https://github.com/ address, got {REPO_URL!r}")
    owner_repo = REPO_URL.removeprefix("https://github.com/").rstrip("/")
    return f"{COLAB_BASE}{owner_repo}/blob/{BRANCH}/notebooks/{name}.ipynb"


def badge_markdown(name: str) -> str:
    """The "Open in Colab" badge, as markdown, for notebook ``name``."""
    return f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({colab_url(name)})"


def setup_cell_source(name: str) -> str:
    """The first code cell of notebook ``name``, exactly as it must appear there."""
    return f'''\
# FAST = True: small sizes and the same code, a few minutes on a CPU (the README's table has the times).
# FAST = False: the full sizes, {NOTEBOOKS[name]}.
# The environment variable INPAINTLIB_FAST (1 or 0), when set, overrides this line.
FAST = True

# Set-up: on Colab, fetch the repository and install it without touching Colab's torch and
# torchvision; elsewhere, use the checkout this notebook is in. Safe to run again (Run all).
import os
import subprocess
import sys

REPO_URL = "{REPO_URL}"  # = inpaintlib.notebook.REPO_URL; a fork: the README says how
if "google.colab" in sys.modules:
    REPO_DIR = "{COLAB_REPO_DIR}"
    if not os.path.isdir(os.path.join(REPO_DIR, ".git")):
        clone = subprocess.run(["git", "clone", "--depth", "1", REPO_URL, REPO_DIR], capture_output=True, text=True,
                               env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))
        if clone.returncode != 0:
            git_says = (clone.stderr.strip().splitlines() or ["no message"])[-1]
            raise SystemExit(f"Could not clone {{REPO_URL}} ({{git_says}}). If this notebook comes from a "
                             "fork, set REPO_URL above to the fork's address; else check the runtime's network.")
elif os.path.isfile(os.path.join("..", "inpaintlib", "__init__.py")):
    REPO_DIR = os.path.abspath("..")  # started from notebooks/ in a checkout
else:
    REPO_DIR = os.getcwd()
if REPO_DIR not in sys.path:
    sys.path.insert(0, REPO_DIR)

from inpaintlib.notebook import setup

env = setup(REPO_DIR, fast=FAST)'''


# ----------------------------------------------------------------------------------------------
# fast mode


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def fast_mode(fast: bool | None = None) -> bool:
    """The mode a notebook runs in: the environment variable INPAINTLIB_FAST when it is set (to
    anything but the empty string), else ``fast`` (the first cell's switch), else full mode."""
    value = os.environ.get("INPAINTLIB_FAST", "").strip()
    if value:
        return _flag(value)
    return bool(fast)


FAST = fast_mode()  # until a notebook's set-up cell says otherwise (``setup(..., fast=FAST)``)


def sizes(fast, full, fast_mode: bool | None = None):
    """``fast`` in fast mode, else ``full``. Two dicts with the same keys give a namespace
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

# where 03_training writes its model: full mode, and fast mode's smoke run (kept apart on purpose)
LEARNER_CKPT = Path("outputs/inpaint/last.pt")
FAST_CKPT = Path("outputs/inpaint_fast/last.pt")


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


def _pip(cmd: list) -> None:
    """Run one pip command; a failure is one readable message, not pip's traceback."""
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"Could not install ({' '.join(cmd[3:])}): {' / '.join(last)}. Check the runtime's "
                         f"network; if this notebook comes from a fork, set REPO_URL in the first cell to the "
                         f"fork's address ({REPO_URL} now).")


def colab_install(repo_dir) -> list:
    """On Colab: ``pip install --no-deps -e`` the repository (so torch and torchvision are never
    reinstalled), then pip-install only the light dependencies that are missing. Does nothing the
    second time. Returns the pip commands it ran."""
    ran = []
    if not installed_from(repo_dir):
        cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", str(repo_dir)]
        _pip(cmd)
        ran.append(cmd)
    missing = [spec for module, spec in LIGHT_DEPS.items() if importlib.util.find_spec(module) is None]
    if missing:
        cmd = [sys.executable, "-m", "pip", "install", "-q", *missing]
        _pip(cmd)
        ran.append(cmd)
    return ran


def setup(repo_dir=None, fast: bool | None = None, verbose: bool = True) -> SimpleNamespace:
    """Run by every notebook's first cell: install on Colab, move to the repository root (so that
    ``data/`` and ``outputs/`` mean the repository's folders), create ``outputs/``, pick the device,
    and fix the mode (``fast``, the cell's switch, unless INPAINTLIB_FAST is set).

    Returns a namespace: root, device, fast, colab."""
    global FAST
    FAST = fast_mode(fast)
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
        source = "INPAINTLIB_FAST" if os.environ.get("INPAINTLIB_FAST", "").strip() else "FAST"
        mode = f"fast (small sizes; set by {source})" if FAST else f"full (set by {source})"
        gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
        print(f"inpaintlib from {root} | {where} | mode: {mode} | device: {device}{gpu} | torch {torch.__version__}")
        if colab and device.type != "cuda":
            print("no GPU in this Colab runtime: Runtime > Change runtime type > GPU, then Run all again")
    return SimpleNamespace(root=root, device=device, fast=FAST, colab=colab)
